"""Lab 1 — the layer DB: from an image name to the directories holding its layers.

Every function takes ``root``, a Docker data root (``/var/lib/docker`` or a fake one), and
reads only files under it. Ids are spelled as Docker spells them: ``sha256:<64 hex>`` for
layer ids (DiffIDs), db ids (ChainIDs) and image ids; 64 bare hex for cache-ids.

Glossary: layer id = DiffID, db id = ChainID, cache-id = the overlay2 directory name.

This file is also the reference reader of a root: ``dockerlab inspect`` and the conformance
tests call these functions, so it raises the errors of ``fakeroot_builder.errors`` with the
path that is wrong.
"""

from __future__ import annotations

import hashlib
import os
import re

from fakeroot_builder.errors import (
    CorruptJSONError,
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    UnknownReferenceError,
)
from fakeroot_builder.formats import read_json as _read_json
from fakeroot_builder.formats import read_text as _read_text

__all__ = [
    "chain_ids",
    "compare_hosts",
    "db_id_in_image",
    "db_ids_of_layer",
    "image_layer_ids",
    "image_refs",
    "image_stack",
    "layer_diff_dir",
    "read_layer",
    "resolve_image",
    "stack_matches_config",
]

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


# -- given: small readers ------------------------------------------------------------------------


def _store(root: str) -> str:
    """``<root>/image/overlay2``: the image store of the overlay2 driver."""
    return os.path.join(root, "image", "overlay2")


def _digest(value: str, path: str) -> str:
    """``value`` if it is ``sha256:<64 hex>``, else an error naming ``path``."""
    if not _DIGEST.match(value):
        raise MalformedIdError(path, f"expected sha256:<64 hex>, found {value[:80]!r}")
    return value


# -- task 1: name or id → image id → layer ids ---------------------------------------------------


def _normalize(ref: str) -> str:
    """``nginx`` → ``nginx:latest``; ``docker.io/library/nginx`` → ``nginx``, as the CLI does."""
    for prefix in ("docker.io/", "index.docker.io/"):
        ref = ref.removeprefix(prefix)
    ref = ref.removeprefix("library/")
    last = ref.rsplit("/", 1)[-1]
    if "@" not in last and ":" not in last:
        ref += ":latest"
    return ref


def _references(root: str) -> tuple[dict[str, str], str]:
    """Every reference of repositories.json (``nginx:latest`` → image id), and the file's path.

    The file is ``{"Repositories": {"<repo>": {"<ref>": "<image id>"}}}``; a daemon that never
    pulled anything may not have it yet.
    """
    path = os.path.join(_store(root), "repositories.json")
    if not os.path.exists(path):
        return {}, path
    repos = _read_json(path).get("Repositories", {})
    if not isinstance(repos, dict) or not all(isinstance(r, dict) for r in repos.values()):
        raise CorruptJSONError(path, 'expected {"Repositories": {"<repo>": {"<ref>": "<image id>"}}}')
    return {ref: target for refs in repos.values() for ref, target in refs.items()}, path


def resolve_image(root: str, ref: str) -> str:
    """The image id (``sha256:…``) that ``ref`` names, as ``docker image inspect REF`` finds it.

    ``ref`` may be a name (``nginx``, ``nginx:latest``, ``docker.io/library/nginx``), a digest
    reference (``nginx@sha256:…``), a full image id (with or without ``sha256:``) or a unique
    prefix of one (``2a4fbb36e966``).
    """
    # Solution: names go through repositories.json; anything else is matched against the files
    # of imagedb/content/sha256, whose names are the image ids.
    refs, repos_path = _references(root)
    wanted = _normalize(ref)
    if wanted in refs:
        return _digest(refs[wanted], repos_path)
    content = os.path.join(_store(root), "imagedb", "content", "sha256")
    prefix = ref.removeprefix("sha256:")
    if re.fullmatch(r"[a-f0-9]{1,64}", prefix) and os.path.isdir(content):
        matches = sorted(n for n in os.listdir(content) if n.startswith(prefix))
        if len(matches) == 1:
            return "sha256:" + matches[0]
        if len(matches) > 1:
            raise UnknownReferenceError(content, f"{ref!r} is ambiguous: {len(matches)} images start with it")
    raise UnknownReferenceError(repos_path, f"no image called {ref!r}")


def image_refs(root: str, image_id: str) -> list[str]:
    """Every reference in repositories.json that points at ``image_id``, sorted."""
    # Solution: invert the repositories.json map.
    refs, _ = _references(root)
    return sorted(ref for ref, target in refs.items() if target == image_id)


def image_layer_ids(root: str, ref: str) -> list[str]:
    """The image's layer ids (DiffIDs), base first: its config's ``rootfs.diff_ids``."""
    # Solution: the image id is the sha256 of the config; the config is stored under that name.
    image_id = resolve_image(root, ref)
    path = os.path.join(_store(root), "imagedb", "content", "sha256", image_id[7:])
    config = _read_json(path)
    try:
        diff_ids = config["rootfs"]["diff_ids"]
    except (KeyError, TypeError):
        raise CorruptJSONError(path, "image config has no rootfs.diff_ids") from None
    return [_digest(d, path) for d in diff_ids]


# -- task 2: one layer DB entry ------------------------------------------------------------------


def read_layer(root: str, db_id: str) -> dict:
    """The layer DB entry ``layerdb/sha256/<db id>/`` as a dict.

    Keys: ``db_id``, ``layer_id`` (the ``diff`` file), ``cache_id``, ``parent`` (a db id, or
    None for a base layer, which has no ``parent`` file) and ``size`` (an int).
    """
    # Solution: one small file per field, no trailing newlines; `parent` is absent on a base.
    entry = os.path.join(_store(root), "layerdb", "sha256", _digest(db_id, "db id")[7:])
    if not os.path.isdir(entry):
        raise MissingEntryError(entry, "no such layer DB entry")
    cache_id = _read_text(os.path.join(entry, "cache-id"))
    if not _HEX64.match(cache_id):
        raise MalformedIdError(os.path.join(entry, "cache-id"), f"not 64 hex: {cache_id[:80]!r}")
    parent_path = os.path.join(entry, "parent")
    parent = _digest(_read_text(parent_path), parent_path) if os.path.exists(parent_path) else None
    size_path = os.path.join(entry, "size")
    size = _read_text(size_path)
    if not size.isdigit():
        raise MalformedIdError(size_path, f"size is not a number: {size[:80]!r}")
    return {
        "db_id": db_id,
        "layer_id": _digest(_read_text(os.path.join(entry, "diff")), os.path.join(entry, "diff")),
        "cache_id": cache_id,
        "parent": parent,
        "size": int(size),
    }


# -- task 3: layer id → db id ---------------------------------------------------------------------


def chain_ids(layer_ids: list[str]) -> list[str]:
    """The db id (ChainID) of each layer of a stack, base first.

    The base layer's db id is its layer id; every other one is
    ``"sha256:" + sha256("<db id of the layer below> <layer id>")``.
    """
    # Solution: fold over the stack; the text hashed is both full "sha256:…" ids and one space.
    out: list[str] = []
    for layer_id in layer_ids:
        if not out:
            out.append(layer_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {layer_id}".encode()).hexdigest())
    return out


def db_ids_of_layer(root: str, layer_id: str) -> list[str]:
    """Every db id on disk whose ``diff`` is ``layer_id``, sorted (one layer id, many parents)."""
    # Solution: scan layerdb/sha256/*/diff; the same content on two parents has two entries.
    base = os.path.join(_store(root), "layerdb", "sha256")
    found = []
    for name in os.listdir(base):
        diff = os.path.join(base, name, "diff")
        if os.path.exists(diff) and _read_text(diff) == layer_id:
            found.append("sha256:" + name)
    return sorted(found)


def db_id_in_image(root: str, ref: str, layer_id: str) -> str:
    """The db id of ``layer_id`` inside the image ``ref``'s stack (unambiguous, unlike a scan)."""
    # Solution: the ChainID depends on everything below, so compute it along the image's stack.
    layer_ids = image_layer_ids(root, ref)
    if layer_id not in layer_ids:
        raise UnknownReferenceError(ref, f"{layer_id} is not a layer of this image")
    return chain_ids(layer_ids)[layer_ids.index(layer_id)]


# -- task 4: layer id → db id → cache-id → overlay2 directory ------------------------------------


def layer_diff_dir(root: str, ref: str, layer_id: str) -> str:
    """The directory holding the files of ``layer_id`` of image ``ref``: ``overlay2/<cache-id>/diff``."""
    # Solution: db id in the image, then its cache-id, which names the overlay2 directory.
    cache_id = read_layer(root, db_id_in_image(root, ref, layer_id))["cache_id"]
    path = os.path.join(root, "overlay2", cache_id, "diff")
    if not os.path.isdir(path):
        raise MissingEntryError(path, "the layer's cache directory is missing")
    return path


# -- task 5: rebuild a stack from parent pointers -------------------------------------------------


def image_stack(root: str, ref: str) -> list[str]:
    """The image's db ids base first, found by following ``parent`` files down from the top."""
    # Solution: start at the top layer's ChainID, walk `parent` until a base, then reverse.
    top = chain_ids(image_layer_ids(root, ref))[-1]
    stack: list[str] = []
    node: str | None = top
    while node is not None:
        if node in stack:
            raise ParentCycleError(
                os.path.join(_store(root), "layerdb", "sha256", node[7:], "parent"),
                f"parent chain loops back to {node}",
            )
        stack.append(node)
        node = read_layer(root, node)["parent"]
    return stack[::-1]


def stack_matches_config(root: str, ref: str) -> bool:
    """True when the parent chain on disk is exactly the ChainIDs computed from the config."""
    # Solution: compare both ways of getting the stack, and each entry's `diff` too.
    layer_ids = image_layer_ids(root, ref)
    stack = image_stack(root, ref)
    return stack == chain_ids(layer_ids) and [read_layer(root, d)["layer_id"] for d in stack] == layer_ids


# -- task 6: what is deterministic, what is random -----------------------------------------------


def compare_hosts(root_a: str, root_b: str, ref: str) -> list[dict]:
    """Image ``ref`` on two hosts, layer by layer, base first.

    Each row: ``layer_id``, ``db_id_a``, ``db_id_b``, ``cache_id_a``, ``cache_id_b``. Pulled
    from the same registry, layer ids and db ids agree; cache-ids never do.
    """
    # Solution: the db id is computed from content, the cache-id is drawn at random per host.
    rows = []
    ids_a, ids_b = image_layer_ids(root_a, ref), image_layer_ids(root_b, ref)
    for layer_id, db_a, db_b in zip(ids_a, chain_ids(ids_a), chain_ids(ids_b)):
        rows.append(
            {
                "layer_id": layer_id,
                "db_id_a": db_a,
                "db_id_b": db_b,
                "cache_id_a": read_layer(root_a, db_a)["cache_id"],
                "cache_id_b": read_layer(root_b, db_b)["cache_id"],
            }
        )
    return rows
