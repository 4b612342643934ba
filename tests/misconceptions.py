"""Plausibly-wrong implementations of the labs: each one real misconception, otherwise perfect.

A misconception is the reference solution with one or two functions replaced by what a student
who believes something false would write. :func:`namespace` gives the module namespace of such an
implementation: every function of the solution is rebound to globals where the replacements
live, so a replaced helper (``_visible_below``) is what the solution's own ``layer_changes``
calls. ``tests/test_misconceptions.py`` runs the graded tests of the affected task on each one and
asserts that the task fails.

To add one: write the wrong function(s) below and one :class:`Misconception` line in
:data:`MISCONCEPTIONS`.
"""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakeroot_builder.errors import DanglingLinkError, UnknownReferenceError
from fakeroot_builder.formats import is_opaque, is_whiteout
from fakeroot_builder.formats import read_json as _read_json
from fakeroot_builder.formats import read_text as _read_text

__all__ = ["MISCONCEPTIONS", "Misconception", "namespace"]


@dataclass(frozen=True)
class Misconception:
    """``name``: what the student believes; ``task``: (lab, number) whose tests must fail."""

    name: str
    lab: str
    task: int
    replace: dict[str, Callable[..., Any]] = field(default_factory=dict)


def namespace(m: Misconception) -> dict[str, Any]:
    """The globals of the solution module of ``m.lab`` with ``m.replace`` swapped in."""
    import importlib

    module = importlib.import_module(
        {"lab1": "solutions.lab1.layerdb", "lab2": "solutions.lab2.overlay", "lab3": "solutions.lab3.containerd"}[m.lab]
    )
    ns: dict[str, Any] = dict(vars(module))
    for name, value in list(ns.items()):
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            ns[name] = _rebind(value, ns)
    for name, func in m.replace.items():
        assert name in ns, f"{m.name}: the solution has no {name}()"
        ns[f"_{name.lstrip('_')}_original"] = ns[name]  # a replacement may call the right one
        ns[name] = _rebind(func, ns)
    return ns


def _rebind(func: types.FunctionType, ns: dict[str, Any]) -> types.FunctionType:
    new = types.FunctionType(func.__code__, ns, func.__name__, func.__defaults__, func.__closure__)
    new.__kwdefaults__ = func.__kwdefaults__
    return new


# Inside the replacements, names such as `lower_chain` or `_store` are looked up in the rebound
# namespace (the solution's), so each replacement is only the part the student got wrong.
# ruff: noqa: F821

# -- lab 1 ----------------------------------------------------------------------------------------


def _digest_by_name_part(root: str, ref: str) -> str:
    """`nginx@sha256:…` is just `nginx`: the digest is decoration."""
    if "@" in ref:
        ref = ref.split("@", 1)[0]
    return _resolve_image_original(root, ref)


def _first_prefix_match(root: str, ref: str) -> str:
    """A short id is the first image id that starts with it."""
    refs, _ = _references(root)
    wanted = _normalize(ref)
    if wanted in refs:
        return refs[wanted]
    content = os.path.join(_store(root), "imagedb", "content", "sha256")
    prefix = ref.removeprefix("sha256:")
    matches = sorted(n for n in os.listdir(content) if n.startswith(prefix))
    if matches:
        return "sha256:" + matches[0]
    raise UnknownReferenceError(content, f"no image called {ref!r}")


def _tags_only(root: str, image_id: str) -> list[str]:
    """An image's references are its tags (digests are not references)."""
    refs, _ = _references(root)
    return sorted(r for r, target in refs.items() if target == image_id and "@" not in r)


def _layer_of_nones(root: str, db_id: str) -> dict:
    """A missing layer DB entry reads as empty fields."""
    entry = os.path.join(_store(root), "layerdb", "sha256", db_id.removeprefix("sha256:"))

    def field_(name: str) -> str | None:
        path = os.path.join(entry, name)
        return _read_text(path) if os.path.exists(path) else None

    size = field_("size")
    return {"db_id": db_id, "layer_id": field_("diff"), "cache_id": field_("cache-id"),
            "parent": field_("parent"), "size": int(size) if size else None}


def _parent_empty_string(root: str, db_id: str) -> dict:
    """A base layer's parent is the empty string."""
    out = _read_layer_original(root, db_id)
    return {**out, "parent": out["parent"] or ""}


def _chain_of_bare_hex(layer_ids: list[str]) -> list[str]:
    """The ChainID hashes the bare hex ids."""
    out: list[str] = []
    for layer_id in layer_ids:
        if not out:
            out.append(layer_id)
        else:
            text = f"{out[-1].removeprefix('sha256:')} {layer_id.removeprefix('sha256:')}"
            out.append("sha256:" + hashlib.sha256(text.encode()).hexdigest())
    return out


def _chain_base_hashed(layer_ids: list[str]) -> list[str]:
    """The base layer's db id is a hash too."""
    out: list[str] = []
    for layer_id in layer_ids:
        below = out[-1] if out else ""
        out.append("sha256:" + hashlib.sha256(f"{below} {layer_id}".encode()).hexdigest())
    return out


def _one_db_id_per_layer(root: str, layer_id: str) -> list[str]:
    """A layer id has one db id: the first entry found."""
    return _db_ids_of_layer_original(root, layer_id)[:1]


def _db_id_by_scan(root: str, ref: str, layer_id: str) -> str:
    """The db id of a layer is wherever its diff is on disk (no need to ask the image's stack)."""
    if layer_id not in image_layer_ids(root, ref):
        raise UnknownReferenceError(ref, f"{layer_id} is not a layer of this image")
    return db_ids_of_layer(root, layer_id)[0]


def _cache_id_is_db_hex(root: str, ref: str, layer_id: str) -> str:
    """The overlay2 directory is named after the db id."""
    return os.path.join(root, "overlay2", db_id_in_image(root, ref, layer_id)[7:], "diff")


def _stack_top_first(root: str, ref: str) -> list[str]:
    """Following parents gives the stack (no need to reverse it)."""
    return _image_stack_original(root, ref)[::-1]


def _stack_matches_by_length(root: str, ref: str) -> bool:
    """A stack matches its config when it has as many layers and the same top."""
    layer_ids = image_layer_ids(root, ref)
    stack = image_stack(root, ref)
    return len(stack) == len(layer_ids) and stack[-1] == chain_ids(layer_ids)[-1]


def _stack_without_diff_check(root: str, ref: str) -> bool:
    """Matching db ids are enough: a layer entry's diff file cannot be wrong."""
    return image_stack(root, ref) == chain_ids(image_layer_ids(root, ref))


def _hosts_share_cache_ids(root_a: str, root_b: str, ref: str) -> list[dict]:
    """Both hosts unpack into the same cache-id (it is derived like the db id)."""
    rows = _compare_hosts_original(root_a, root_b, ref)
    return [{**r, "cache_id_b": r["cache_id_a"]} for r in rows]


# -- lab 2 ----------------------------------------------------------------------------------------


def _link_without_existence_check(root: str, link: str) -> str:
    """A short link names its cache-id; no need to check that it leads anywhere."""
    target = os.readlink(os.path.join(root, "overlay2", "l", link)) if os.path.lexists(
        os.path.join(root, "overlay2", "l", link)) else f"../{link}/diff"
    return target.split("/")[1]


def _lower_base_first(root: str, cache_id: str) -> list[str]:
    """The lower file lists the base first."""
    return _lower_chain_original(root, cache_id)[::-1]


def _lower_as_links(root: str, cache_id: str) -> list[str]:
    """The lower chain is the list of links (l/<link> entries are already the answer)."""
    path = os.path.join(_layer_dir(root, cache_id), "lower")
    if not os.path.exists(path):
        return []
    return [e.removeprefix("l/") for e in _read_text(path).split(":")]


def _check_lowers_dangling_only(root: str) -> list[str]:
    """The only error worth catching is a dangling link."""
    bad = []
    for name in sorted(os.listdir(_layerdb(root))):
        db_id = "sha256:" + name
        try:
            cache_id = _read_text(os.path.join(_layerdb(root), name, "cache-id"))
            if lower_chain(root, cache_id) != _parent_cache_chain(root, db_id):
                bad.append(db_id)
        except DanglingLinkError:
            bad.append(db_id)
    return bad


def _check_lowers_length_and_nearest(root: str) -> list[str]:
    """Two chains agree when they are as long and start with the same layer."""
    bad = []
    for name in sorted(os.listdir(_layerdb(root))):
        db_id = "sha256:" + name
        try:
            cache_id = _read_text(os.path.join(_layerdb(root), name, "cache-id"))
            lowers, parents = lower_chain(root, cache_id), _parent_cache_chain(root, db_id)
            if len(lowers) != len(parents) or lowers[:1] != parents[:1]:
                bad.append(db_id)
        except Exception:
            bad.append(db_id)
    return bad


def _check_lowers_as_sets(root: str) -> list[str]:
    """Order does not matter in a lower chain: compare the sets."""
    bad = []
    for name in sorted(os.listdir(_layerdb(root))):
        db_id = "sha256:" + name
        try:
            cache_id = _read_text(os.path.join(_layerdb(root), name, "cache-id"))
            if set(lower_chain(root, cache_id)) != set(_parent_cache_chain(root, db_id)):
                bad.append(db_id)
        except Exception:
            bad.append(db_id)
    return bad


def _check_lowers_raises(root: str) -> list[str]:
    """A chain that cannot be followed is an error to raise, not a disagreement to report."""
    bad = []
    for name in sorted(os.listdir(_layerdb(root))):
        cache_id = _read_text(os.path.join(_layerdb(root), name, "cache-id"))
        if lower_chain(root, cache_id) != _parent_cache_chain(root, "sha256:" + name):
            bad.append("sha256:" + name)
    return bad


def _container_first_prefix(root: str, container: str) -> str:
    """A container id prefix picks the first container that starts with it."""
    base = os.path.join(root, "containers")
    ids = sorted(os.listdir(base))
    if container in ids:
        return container
    for cid in ids:
        config = os.path.join(base, cid, "config.v2.json")
        if os.path.exists(config) and _read_json(config).get("Name") == "/" + container.lstrip("/"):
            return cid
    matches = [i for i in ids if i.startswith(container)]
    if matches:
        return matches[0]
    raise UnknownReferenceError(base, f"{container!r} names no container")


def _container_prefix_before_name(root: str, container: str) -> str:
    """An id prefix is tried before names."""
    base = os.path.join(root, "containers")
    ids = sorted(os.listdir(base))
    matches = [i for i in ids if i.startswith(container)]
    if len(matches) == 1:
        return matches[0]
    return _container_id_original(root, container)


def _relative_lowerdir(root: str, container: str) -> str:
    """lowerdir keeps the l/<link> entries as the lower file has them."""
    cid = _container_id(root, container)
    mount_id = _read_text(os.path.join(root, "image", "overlay2", "layerdb", "mounts", cid, "mount-id"))
    layer = _layer_dir(root, mount_id)
    lowers = _read_text(os.path.join(layer, "lower"))
    return f"lowerdir={lowers},upperdir={os.path.join(layer, 'diff')},workdir={os.path.join(layer, 'work')}"


def _visible_if_any_lower_has_it(rel: str, diff: str, lowers: list[str]) -> bool:
    """A path is visible below when any lower layer has it (whiteouts and opaque dirs aside)."""
    return any(os.path.lexists(os.path.join(lower, rel)) and not is_whiteout(os.path.join(lower, rel)) for lower in lowers)


def _own_opaque_ignored(rel: str, diff: str, lowers: list[str]) -> bool:
    """An opaque directory hides lower content from the layers above it, not from its own layer."""
    return _visible_below_original(rel, "/nonexistent", lowers)


def _nearer_opaque_ignored(rel: str, diff: str, lowers: list[str]) -> bool:
    """Only the layer's own opaque directories matter; opaque directories below it are history."""
    parts = rel.split("/")
    if any(is_opaque(os.path.join(diff, *parts[:depth])) for depth in range(1, len(parts))):
        return False
    for lower in lowers:
        for depth in range(1, len(parts) + 1):
            path = os.path.join(lower, *parts[:depth])
            if not os.path.lexists(path):
                break
            if is_whiteout(path):
                return False
            if depth == len(parts):
                return True
            if not _is_dir(path):
                return False
    return False


def _file_over_dir_ignored(rel: str, diff: str, lowers: list[str]) -> bool:
    """A file in a nearer layer does not hide a directory's content in a farther one."""
    parts = rel.split("/")
    if any(is_opaque(os.path.join(diff, *parts[:depth])) for depth in range(1, len(parts))):
        return False
    for lower in lowers:
        hidden_below = False
        for depth in range(1, len(parts) + 1):
            path = os.path.join(lower, *parts[:depth])
            if not os.path.lexists(path):
                break
            if is_whiteout(path):
                return False
            if depth == len(parts):
                return True
            if not _is_dir(path):
                break
            if is_opaque(path):
                hidden_below = True
        if hidden_below:
            return False
    return False


def _whiteout_parent_does_not_hide_deeper(rel: str, diff: str, lowers: list[str]) -> bool:
    """A whiteout hides its own path only; what farther layers have below it still shows."""
    parts = rel.split("/")
    if any(is_opaque(os.path.join(diff, *parts[:depth])) for depth in range(1, len(parts))):
        return False
    for lower in lowers:
        hidden_below = False
        for depth in range(1, len(parts) + 1):
            path = os.path.join(lower, *parts[:depth])
            if not os.path.lexists(path):
                break
            if is_whiteout(path):
                if depth == len(parts):
                    return False
                break
            if depth == len(parts):
                return True
            if not _is_dir(path):
                return False
            if is_opaque(path):
                hidden_below = True
        if hidden_below:
            return False
    return False


def _nearest_lower_only(rel: str, diff: str, lowers: list[str]) -> bool:
    """Only the layer right below matters (it already holds everything below it)."""
    return _visible_below_original(rel, diff, lowers[:1])


def _changes_new_opaque_not_added(root: str, cache_id: str) -> dict:
    """An opaque directory is listed as opaque, never as added."""
    out = _layer_changes_original(root, cache_id)
    out["added"] = [p for p in out["added"] if p not in out["opaque"]]
    return out


def _changes_dirs_changed(root: str, cache_id: str) -> dict:
    """A directory that exists below and appears in diff/ is a change."""
    diff = os.path.join(_layer_dir(root, cache_id), "diff")
    lowers = [os.path.join(root, "overlay2", c, "diff") for c in lower_chain(root, cache_id)]
    out = _layer_changes_original(root, cache_id)
    for top, dirs, _ in os.walk(diff):
        for name in dirs:
            rel = os.path.relpath(os.path.join(top, name), diff)
            if _visible_below(rel, diff, lowers):
                out["changed"].append("/" + rel)
    return {k: sorted(v) for k, v in out.items()}


def _changes_whiteouts_by_name(root: str, cache_id: str) -> dict:
    """Deletions are the .wh.<name> files, as in a layer tar; a 0/0 device is just another file."""
    out = _layer_changes_original(root, cache_id)
    return {**out, "changed": sorted(out["changed"] + out["deleted"]), "deleted": []}


def _changes_opaque_by_marker_file(root: str, cache_id: str) -> dict:
    """An opaque directory holds a .wh..wh..opq file, as in a layer tar."""
    out = _layer_changes_original(root, cache_id)
    return {**out, "opaque": []}


# -- lab 3 -----------------------------------------------------------------------------------------


def _image_id_is_the_config(root: str, ref: str) -> dict:
    """The image id is the config's digest, as in lab 1's store."""
    target = _image_target_original(root, ref)
    manifest = target["digest"]
    if target["media_type"] in _INDEX_TYPES:  # the linux/amd64 entry
        manifest = next(m["digest"] for m in _read_json(blob_path(root, manifest))["manifests"]
                        if (m.get("platform") or {}).get("architecture") == "amd64")
    return {**target, "digest": _read_json(blob_path(root, manifest))["config"]["digest"]}


def _size_as_uvarint(root: str, ref: str) -> dict:
    """A size is a plain uvarint (it is zigzag: a uvarint reading gives twice the size)."""
    target = _image_target_original(root, ref)
    return {**target, "size": target["size"] * 2}


def _first_present_manifest(root: str, ref: str) -> str:
    """The first manifest of an index whose blob is present is the image's."""
    target = image_target(root, ref)
    if target["media_type"] not in _INDEX_TYPES:
        return target["digest"]
    for entry in _read_json(blob_path(root, target["digest"]))["manifests"]:
        if os.path.isfile(os.path.join(root, _CONTENT, "sha256", entry["digest"][7:])):
            return entry["digest"]
    raise AssertionError("no manifest present")


def _snapshot_keys_are_diff_ids(root: str, ref: str) -> list[str]:
    """A snapshot is keyed by its layer's DiffID."""
    return image_diff_ids(root, ref)


def _directory_is_the_name_number(root: str, key: str) -> dict:
    """The number in meta.db's name ``moby/<n>/<key>`` is the directory's."""
    snap = _read_snapshot_original(root, key)
    return {**snap, "id": int(snap["name"].split("/")[1])}


def _lowerdir_base_first(root: str, container: str) -> dict:
    """containerd's lowerdir lists the base first."""
    mount = _container_mount_original(root, container)
    return {**mount, "lowerdir": mount["lowerdir"][::-1]}


def _an_image_owns_its_blobs(root: str, ref: str) -> dict:
    """Removing an image removes everything it refers to (nothing is shared, nothing held)."""
    name, record = _record(root, ref)
    content, snapshots = _mark(root, [_text(_sub(record, "target").get("digest")) or ""], [])
    return {"removed_content": sorted(content), "removed_snapshots": sorted(snapshots), "kept_content": [], "kept_snapshots": []}


def _gc_refs_of_layers_only(root: str, digest: str) -> dict:
    """Only a manifest's layer labels (gc.ref.content.l.<i>) are references."""
    refs = _gc_refs_original(root, digest)
    labels = _labels(_sub(_namespace(root), "content", "blob", digest))
    return {"content": sorted(v for k, v in labels.items() if k.startswith("containerd.io/gc.ref.content.l.")), "snapshots": refs["snapshots"]}


def _same_ids_in_both_stores(docker_root: str, containerd_root: str, ref: str) -> list[dict]:
    """A snapshot id is the classic store's cache-id (the same directory name in both stores)."""
    return [{**row, "snapshot_id": row["cache_id"]} for row in _compare_stores_original(docker_root, containerd_root, ref)]


#: Every misconception the graded tests must catch.
MISCONCEPTIONS: tuple[Misconception, ...] = (
    # lab 1
    Misconception("digest reference resolved by its name part", "lab1", 1, {"resolve_image": _digest_by_name_part}),
    Misconception("ambiguous short image id gives the first match", "lab1", 1, {"resolve_image": _first_prefix_match}),
    Misconception("digest references are not references", "lab1", 1, {"image_refs": _tags_only}),
    Misconception("missing layer DB entry reads as Nones", "lab1", 2, {"read_layer": _layer_of_nones}),
    Misconception("a base layer's parent is ''", "lab1", 2, {"read_layer": _parent_empty_string}),
    Misconception("ChainID of bare hex ids", "lab1", 3, {"chain_ids": _chain_of_bare_hex}),
    Misconception("the base layer's db id is hashed too", "lab1", 3, {"chain_ids": _chain_base_hashed}),
    Misconception("one db id per layer id", "lab1", 3, {"db_ids_of_layer": _one_db_id_per_layer}),
    Misconception("db id in an image found by scanning the disk", "lab1", 3, {"db_id_in_image": _db_id_by_scan}),
    Misconception("overlay2 directory named by the db id", "lab1", 4, {"layer_diff_dir": _cache_id_is_db_hex}),
    Misconception("parents walked top first, not reversed", "lab1", 5, {"image_stack": _stack_top_first}),
    Misconception("stack matches when length and top match", "lab1", 5, {"stack_matches_config": _stack_matches_by_length}),
    Misconception("layer entries' diff files never checked", "lab1", 5, {"stack_matches_config": _stack_without_diff_check}),
    Misconception("cache-ids are the same on every host", "lab1", 6, {"compare_hosts": _hosts_share_cache_ids}),
    # lab 2
    Misconception("a short link is not checked to lead anywhere", "lab2", 1, {"resolve_link": _link_without_existence_check}),
    Misconception("lower chain base first", "lab2", 2, {"lower_chain": _lower_base_first}),
    Misconception("lower chain as links, not cache-ids", "lab2", 2, {"lower_chain": _lower_as_links}),
    Misconception("check_lowers catches only dangling links", "lab2", 3, {"check_lowers": _check_lowers_dangling_only}),
    Misconception("check_lowers compares length and nearest entry", "lab2", 3, {"check_lowers": _check_lowers_length_and_nearest}),
    Misconception("check_lowers compares the chains as sets", "lab2", 3, {"check_lowers": _check_lowers_as_sets}),
    Misconception("check_lowers raises on a chain it cannot follow", "lab2", 3, {"check_lowers": _check_lowers_raises}),
    Misconception("ambiguous container prefix gives the first match", "lab2", 4, {"_container_id": _container_first_prefix}),
    Misconception("container id prefix tried before names", "lab2", 4, {"_container_id": _container_prefix_before_name}),
    Misconception("lowerdir keeps relative l/ entries", "lab2", 4, {"mount_options": _relative_lowerdir}),
    Misconception("visible if any lower has it", "lab2", 5, {"_visible_below": _visible_if_any_lower_has_it}),
    Misconception("this layer's opaque directory ignored", "lab2", 5, {"_visible_below": _own_opaque_ignored}),
    Misconception("an opaque directory in a nearer lower ignored", "lab2", 5, {"_visible_below": _nearer_opaque_ignored}),
    Misconception("a file over a directory ignored", "lab2", 5, {"_visible_below": _file_over_dir_ignored}),
    Misconception("a whited-out parent does not hide deeper layers", "lab2", 5, {"_visible_below": _whiteout_parent_does_not_hide_deeper}),
    Misconception("only the nearest lower layer is looked at", "lab2", 5, {"_visible_below": _nearest_lower_only}),
    Misconception("a new opaque directory is never added", "lab2", 5, {"layer_changes": _changes_new_opaque_not_added}),
    Misconception("a directory that exists below is a change", "lab2", 5, {"layer_changes": _changes_dirs_changed}),
    Misconception("deletions are .wh. files (none on disk)", "lab2", 5, {"layer_changes": _changes_whiteouts_by_name}),
    Misconception("opaque directories hold a .wh..wh..opq file", "lab2", 5, {"layer_changes": _changes_opaque_by_marker_file}),
    # lab 3
    Misconception("the image id is the config digest, as in lab 1", "lab3", 1, {"image_target": _image_id_is_the_config}),
    Misconception("a target's size is a plain uvarint", "lab3", 1, {"image_target": _size_as_uvarint}),
    Misconception("the first present manifest of an index is the image's", "lab3", 1, {"image_manifest": _first_present_manifest}),
    Misconception("a snapshot is keyed by its DiffID", "lab3", 3, {"image_snapshot_keys": _snapshot_keys_are_diff_ids}),
    Misconception("the number in a snapshot's name is its directory", "lab3", 3, {"read_snapshot": _directory_is_the_name_number}),
    Misconception("lowerdir lists the base first", "lab3", 4, {"container_mount": _lowerdir_base_first}),
    Misconception("only layer labels are gc references", "lab3", 5, {"gc_refs": _gc_refs_of_layers_only}),
    Misconception("an image owns every blob and snapshot it refers to", "lab3", 5, {"rmi_effect": _an_image_owns_its_blobs}),
    Misconception("snapshot ids are the classic store's cache-ids", "lab3", 6, {"compare_stores": _same_ids_in_both_stores}),
)
