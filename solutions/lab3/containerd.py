"""Lab 3 — the containerd image store: where Docker 29 really keeps nginx.

Every function takes ``root``, a containerd root (``/var/lib/containerd`` on a Docker 29 host,
or a fake one), and reads only files under it; task 6 also takes a classic Docker root. Docker
keeps its images in containerd's namespace ``moby`` with the ``overlayfs`` snapshotter.

Glossary: digest = sha256 of a content blob (index, manifest, config, gzip layer); DiffID =
lab 1's layer id; ChainID = lab 1's db id = a committed snapshot's key; snapshot id = the
number naming ``snapshots/<id>/`` (a counter, not random, never reused).

The two databases are bbolt files; ``_bolt`` (given) reads one into nested buckets whose keys
and values are bytes. This file is also the reference reader of a containerd root:
``dockerlab inspect`` and the tests' tools call these functions.
"""

from __future__ import annotations

import json
import os
import re

from fakeroot_builder import bbolt
from fakeroot_builder.errors import (
    CorruptFileError,
    CorruptJSONError,
    MalformedIdError,
    MissingEntryError,
    ParentCycleError,
    UnknownReferenceError,
)
from fakeroot_builder.formats import read_json as _read_json

from ..lab1.layerdb import chain_ids, image_layer_ids, read_layer

__all__ = [
    "blob_path",
    "blobs_of_diff_id",
    "compare_stores",
    "container_mount",
    "diff_id_of",
    "gc_refs",
    "image_config",
    "image_diff_ids",
    "image_manifest",
    "image_names",
    "image_snapshot_keys",
    "image_target",
    "layer_digests",
    "read_snapshot",
    "rmi_effect",
    "snapshot_dir",
]

#: Docker's containerd namespace and snapshotter.
NAMESPACE = "moby"
SNAPSHOTTER = "overlayfs"
_META_DB = os.path.join("io.containerd.metadata.v1.bolt", "meta.db")
_CONTENT = os.path.join("io.containerd.content.v1.content", "blobs")
_SNAPSHOTS = "io.containerd.snapshotter.v1.overlayfs"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_KINDS = {1: "view", 2: "active", 3: "committed"}
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


# -- given: reading the databases ----------------------------------------------------------------


_opened: dict[str, tuple[tuple[int, int, int], bbolt.Bucket]] = {}


def _bolt(path: str) -> bbolt.Bucket:
    """The root bucket of the bbolt file ``path`` (keys and values are bytes).

    Read once and kept while the file is unchanged, so calling it often costs nothing; treat
    what it returns as read-only.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MissingEntryError(path, "database is missing") from None
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    if path in _opened and _opened[path][0] == stamp:
        return _opened[path][1]
    try:
        root = bbolt.read(path)
    except bbolt.BoltError as exc:
        raise CorruptFileError(path, f"not a valid bbolt file: {exc}") from None
    _opened[path] = (stamp, root)
    return root


def _namespace(root: str) -> bbolt.Bucket:
    """``meta.db`` → ``v1/moby``: images, content, snapshots, leases, containers of Docker."""
    path = os.path.join(root, _META_DB)
    try:
        return _bolt(path).bucket("v1", NAMESPACE)
    except KeyError:
        raise MissingEntryError(path, f"no namespace {NAMESPACE!r}: Docker has stored nothing here") from None


def _sub(bucket: bbolt.Bucket, *path: str) -> bbolt.Bucket:
    """A nested bucket, or an empty one when it does not exist (a root with no containers…)."""
    try:
        return bucket.bucket(*path)
    except KeyError:
        return bbolt.Bucket()


def _text(value: bytes | bbolt.Bucket | None) -> str | None:
    """A string field (digest, name, parent…) of a record."""
    return value.decode() if isinstance(value, bytes) else None


def _uvarint(data: bytes) -> int:
    """An unsigned varint (Go's ``binary.Uvarint``): snapshot ids, kinds, inodes."""
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
    raise ValueError(f"truncated varint {data!r}")


def _varint(data: bytes) -> int:
    """A signed (zigzag) varint (Go's ``binary.Varint``): sizes."""
    u = _uvarint(data)
    return (u >> 1) ^ -(u & 1)


def _labels(record: bbolt.Bucket) -> dict[str, str]:
    """The ``labels`` bucket of a record as a dict of strings."""
    return {k.decode(): v.decode() for k, v in _sub(record, "labels").items.items() if isinstance(v, bytes)}


def _digest(value: str | None, where: str) -> str:
    """``value`` if it is ``sha256:<64 hex>``, else an error naming ``where``."""
    if value is None or not _DIGEST.match(value):
        raise MalformedIdError(where, f"expected sha256:<64 hex>, found {str(value)[:80]!r}")
    return value


# -- task 1: a name → its image record → manifest → config ---------------------------------------


def image_names(root: str) -> list[str]:
    """Every image name in ``meta.db`` (``docker.io/library/nginx:latest`` …), sorted."""
    # Solution: the keys of the bucket v1/moby/images are the full names.
    return sorted(k.decode() for k in _sub(_namespace(root), "images").items)


def _normalize(ref: str) -> str:
    """``nginx`` → ``docker.io/library/nginx:latest``, as Docker names images in containerd."""
    name, at, digest = ref.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name + at + digest


def _record(root: str, ref: str) -> tuple[str, bbolt.Bucket]:
    """The image record ``ref`` names: by name, by name@digest, or by image id (a target digest)."""
    images = _sub(_namespace(root), "images")
    names = {k.decode(): v for k, v in images.items.items() if isinstance(v, bbolt.Bucket)}
    wanted = _normalize(ref)
    if wanted in names:
        return wanted, names[wanted]
    targets = {n: _text(_sub(r, "target").get("digest")) for n, r in names.items()}
    repo, at, digest = wanted.partition("@")
    if at:  # name@sha256:…: an image of that repository whose target is this digest
        for name in sorted(names):
            if name.rsplit(":", 1)[0] == repo and targets[name] == digest:
                return name, names[name]
    prefix = ref.removeprefix("sha256:")
    if re.fullmatch(r"[a-f0-9]{1,64}", prefix):  # an image id is the target's digest
        found = sorted(n for n, t in targets.items() if t and t[7:].startswith(prefix))
        if len({targets[n] for n in found}) > 1:
            raise UnknownReferenceError(os.path.join(root, _META_DB), f"{ref!r} is ambiguous")
        if found:
            return found[0], names[found[0]]
    raise UnknownReferenceError(os.path.join(root, _META_DB), f"no image called {ref!r}")


def image_target(root: str, ref: str) -> dict:
    """The image record ``ref`` names, as ``ctr -n moby images ls`` shows it.

    ``ref`` may be ``nginx``, ``nginx:1.25``, ``docker.io/library/nginx:latest``,
    ``nginx@sha256:…`` or an image id (full, or a unique prefix). Returns ``{"name",
    "digest", "media_type", "size"}`` of the record's ``target``; its digest is the image id
    Docker 29 shows.
    """
    # Solution: normalise the name as Docker does, then read v1/moby/images/<name>/target;
    # an id is matched against every record's target digest.
    name, record = _record(root, ref)
    target = _sub(record, "target")
    where = f"{os.path.join(root, _META_DB)}: images/{name}/target"
    size = target.get("size")
    return {
        "name": name,
        "digest": _digest(_text(target.get("digest")), where),
        "media_type": _text(target.get("mediatype")),
        "size": _varint(size) if isinstance(size, bytes) else None,
    }


def blob_path(root: str, digest: str) -> str:
    """The file holding the content blob ``digest``: ``…content.v1.content/blobs/sha256/<hex>``."""
    # Solution: the content store names every blob by its digest, algorithm as a directory.
    path = os.path.join(root, _CONTENT, "sha256", _digest(digest, "digest")[7:])
    if not os.path.isfile(path):
        raise MissingEntryError(path, "no such blob in the content store")
    return path


def _blob_json(root: str, digest: str) -> dict:
    return _read_json(blob_path(root, digest))


def image_manifest(root: str, ref: str) -> str:
    """The digest of the image's manifest: its target, or, when the target is an index, the
    entry for linux/amd64 whose blob is in the content store."""
    # Solution: an index lists one manifest per platform; Docker keeps only the blob of the
    # platform it pulled, so pick linux/amd64 among the entries that are present.
    target = image_target(root, ref)
    if target["media_type"] not in _INDEX_TYPES:
        return target["digest"]
    index = _blob_json(root, target["digest"])
    entries = [m for m in index.get("manifests", []) if isinstance(m, dict) and m.get("mediaType") not in _INDEX_TYPES]
    present = [m for m in entries if os.path.isfile(os.path.join(root, _CONTENT, "sha256", str(m.get("digest", ""))[7:]))]
    # linux/amd64 first, then any other real platform; attestations ("unknown/unknown") last
    def rank(entry: dict) -> int:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == ("linux", "amd64"):
            return 0
        return 2 if platform.get("os") in (None, "unknown") else 1

    if present:
        return _digest(min(present, key=rank).get("digest"), blob_path(root, target["digest"]))
    raise MissingEntryError(blob_path(root, target["digest"]), "no manifest of this index is in the content store")


def image_config(root: str, ref: str) -> str:
    """The digest of the image's config (the manifest's ``config.digest``)."""
    # Solution: manifest → config descriptor; this digest is lab 1's image id.
    manifest = image_manifest(root, ref)
    try:
        return _digest(_blob_json(root, manifest)["config"]["digest"], blob_path(root, manifest))
    except (KeyError, TypeError):
        raise CorruptJSONError(blob_path(root, manifest), "manifest has no config.digest") from None


# -- task 2: compressed digest ↔ DiffID ------------------------------------------------------------


def layer_digests(root: str, ref: str) -> list[str]:
    """The digests of the image's layer blobs (compressed), base first: the manifest's ``layers``."""
    # Solution: the manifest lists the blobs a registry serves, in stack order.
    manifest = image_manifest(root, ref)
    layers = _blob_json(root, manifest).get("layers")
    if not isinstance(layers, list):
        raise CorruptJSONError(blob_path(root, manifest), "manifest has no layers list")
    return [_digest(layer.get("digest") if isinstance(layer, dict) else None, blob_path(root, manifest)) for layer in layers]


def image_diff_ids(root: str, ref: str) -> list[str]:
    """The image's DiffIDs (lab 1's layer ids), base first: its config's ``rootfs.diff_ids``."""
    # Solution: the same config as in the classic store, found through the manifest.
    config = image_config(root, ref)
    try:
        return [_digest(d, blob_path(root, config)) for d in _blob_json(root, config)["rootfs"]["diff_ids"]]
    except (KeyError, TypeError):
        raise CorruptJSONError(blob_path(root, config), "image config has no rootfs.diff_ids") from None


def diff_id_of(root: str, digest: str) -> str:
    """The DiffID of the layer blob ``digest``: its ``containerd.io/uncompressed`` label."""
    # Solution: content records carry labels in v1/moby/content/blob/<digest>/labels.
    record = _sub(_namespace(root), "content", "blob", _digest(digest, "digest"))
    label = _labels(record).get("containerd.io/uncompressed")
    if label is None:
        raise MissingEntryError(
            f"{os.path.join(root, _META_DB)}: content/blob/{digest}", "no containerd.io/uncompressed label"
        )
    return _digest(label, f"{os.path.join(root, _META_DB)}: content/blob/{digest}/labels")


def blobs_of_diff_id(root: str, diff_id: str) -> list[str]:
    """Every blob whose ``containerd.io/uncompressed`` label is ``diff_id``, sorted."""
    # Solution: invert the label over all content records (one DiffID, possibly several blobs:
    # the same tar compressed differently).
    blobs = _sub(_namespace(root), "content", "blob")
    return sorted(
        k.decode() for k, record in blobs.items.items()
        if isinstance(record, bbolt.Bucket) and _labels(record).get("containerd.io/uncompressed") == diff_id
    )


# -- task 3: DiffIDs → ChainIDs → snapshot keys → snapshot ids → snapshots/<id>/fs ------------------


def image_snapshot_keys(root: str, ref: str) -> list[str]:
    """The keys of the image's committed snapshots, base first: the ChainIDs of its DiffIDs."""
    # Solution: lab 1's chain_ids, unchanged: containerd keys snapshots by ChainID.
    return chain_ids(image_diff_ids(root, ref))


def read_snapshot(root: str, key: str) -> dict:
    """The snapshot ``key`` as both databases record it.

    ``{"key", "name", "id", "kind", "parent"}``: ``name`` is ``moby/<n>/<key>`` from
    ``meta.db`` (``n`` is NOT the directory number), ``id`` the snapshotter's id from
    ``metadata.db`` (the directory ``snapshots/<id>``), ``kind`` ``committed``, ``active`` or
    ``view``, ``parent`` the parent's key or None.
    """
    # Solution: meta.db maps the key to a snapshotter-wide name; metadata.db maps that name to
    # the id (a uvarint) that names the directory.
    meta_path = os.path.join(root, _META_DB)
    record = _sub(_namespace(root), "snapshots", SNAPSHOTTER).get(key)
    if not isinstance(record, bbolt.Bucket):
        raise UnknownReferenceError(meta_path, f"no snapshot with key {key!r}")
    name = _text(record.get("name"))
    db_path = os.path.join(root, _SNAPSHOTS, "metadata.db")
    try:
        info = _bolt(db_path).bucket("v1", "snapshots", name or "")
    except KeyError:
        raise MissingEntryError(db_path, f"no snapshot named {name!r}") from None
    raw_id, raw_kind = info.get("id"), info.get("kind")
    if not isinstance(raw_id, bytes) or not isinstance(raw_kind, bytes):
        raise MalformedIdError(db_path, f"snapshot {name!r} has no id or kind")
    return {
        "key": key,
        "name": name,
        "id": _uvarint(raw_id),
        "kind": _KINDS.get(_uvarint(raw_kind), "unknown"),
        "parent": _text(record.get("parent")),
    }


def snapshot_dir(root: str, key: str) -> str:
    """The directory holding the files of snapshot ``key``: ``…overlayfs/snapshots/<id>/fs``."""
    # Solution: key → name (meta.db) → id (metadata.db) → snapshots/<id>/fs.
    path = os.path.join(root, _SNAPSHOTS, "snapshots", str(read_snapshot(root, key)["id"]), "fs")
    if not os.path.isdir(path):
        raise MissingEntryError(path, "the snapshot's directory is missing")
    return path


# -- task 4: a container's mount -----------------------------------------------------------------


def _snapshot_key_of_container(root: str, container: str) -> str:
    """The active snapshot of a container: keyed by its full id, or a unique prefix of it."""
    snapshots = _sub(_namespace(root), "snapshots", SNAPSHOTTER)
    keys = [k.decode() for k in snapshots.items if not k.startswith(b"sha256:")]
    if container in keys:
        return container
    matches = sorted(k for k in keys if re.fullmatch(r"[a-f0-9]{64}", k) and container and k.startswith(container))
    if len(matches) == 1:
        return matches[0]
    problem = "is ambiguous" if matches else "names no container's snapshot"
    raise UnknownReferenceError(os.path.join(root, _META_DB), f"{container!r} {problem}")


def container_mount(root: str, container: str) -> dict:
    """The overlay mount of ``container`` (full id or unique prefix), as containerd gives it.

    ``{"lowerdir": [<fs of the -init snapshot>, <fs of the image's top layer>, …, <fs of the
    base>], "upperdir": <fs of the container's snapshot>, "workdir": <its work dir>}``.
    """
    # Solution: the active snapshot keyed by the container id sits on `<id>-init`, which sits
    # on the image's top ChainID; follow parents and turn each key into its directory.
    key = _snapshot_key_of_container(root, container)
    own = read_snapshot(root, key)
    lowers: list[str] = []
    seen = {key}
    parent = own["parent"]
    while parent is not None:
        if parent in seen:
            raise ParentCycleError(os.path.join(root, _META_DB), f"snapshot parents loop back to {parent}")
        seen.add(parent)
        lowers.append(snapshot_dir(root, parent))
        parent = read_snapshot(root, parent)["parent"]
    base = os.path.join(root, _SNAPSHOTS, "snapshots", str(own["id"]))
    return {"lowerdir": lowers, "upperdir": os.path.join(base, "fs"), "workdir": os.path.join(base, "work")}


# -- task 5: what `docker rmi` would leave: garbage-collection references -----------------------


def gc_refs(root: str, digest: str) -> dict:
    """What the content blob ``digest`` keeps alive: ``{"content": [...], "snapshots": [...]}``.

    Read from its ``containerd.io/gc.ref.content…`` and ``containerd.io/gc.ref.snapshot.overlayfs…``
    labels, each list sorted.
    """
    # Solution: a manifest names its config and layers, a config the top snapshot; an index
    # its manifests. Only labels count: containerd's collector never opens a blob.
    record = _sub(_namespace(root), "content", "blob", _digest(digest, "digest"))
    labels = _labels(record)

    def refs(prefix: str) -> list[str]:  # the key itself, or the key then "." or "/" and a suffix
        return sorted({v for k, v in labels.items() if k == prefix or k.startswith((prefix + ".", prefix + "/"))})

    return {"content": refs("containerd.io/gc.ref.content"), "snapshots": refs(f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}")}


def _mark(root: str, content: list[str], snapshots: list[str]) -> tuple[set[str], set[str]]:
    """Every blob and snapshot reachable from these roots through gc labels and parents."""
    ns = _namespace(root)
    blobs, snaps = _sub(ns, "content", "blob"), _sub(ns, "snapshots", SNAPSHOTTER)
    kept_content: set[str] = set()
    kept_snapshots: set[str] = set()
    while content or snapshots:
        if content:
            digest = content.pop()
            if digest not in kept_content and isinstance(blobs.get(digest), bbolt.Bucket):
                kept_content.add(digest)
                refs = gc_refs(root, digest)
                content += refs["content"]
                snapshots += refs["snapshots"]
        else:
            key = snapshots.pop()
            record = snaps.get(key)
            if key not in kept_snapshots and isinstance(record, bbolt.Bucket):
                kept_snapshots.add(key)
                if record.get("parent") is not None:
                    snapshots.append(_text(record.get("parent")) or "")
    return kept_content, kept_snapshots


def _gc_roots(root: str, skip_image: str | None = None) -> tuple[list[str], list[str]]:
    """What containerd's collector starts from: images, leases, containers, gc.root labels."""
    ns = _namespace(root)
    content: list[str] = []
    snapshots: list[str] = []
    for name, record in _sub(ns, "images").items.items():
        if isinstance(record, bbolt.Bucket) and name.decode() != skip_image:
            content.append(_text(_sub(record, "target").get("digest")) or "")
    for lease in _sub(ns, "leases").items.values():
        if isinstance(lease, bbolt.Bucket):
            content += [k.decode() for k in _sub(lease, "content").items]
            snapshots += [k.decode() for k in _sub(lease, "snapshots", SNAPSHOTTER).items]
    for record in _sub(ns, "containers").items.values():
        if isinstance(record, bbolt.Bucket) and _text(record.get("snapshotter")) == SNAPSHOTTER:
            snapshots.append(_text(record.get("snapshotKey")) or "")
    for kind, out in (("content", content), ("snapshots", snapshots)):
        records = _sub(ns, "content", "blob") if kind == "content" else _sub(ns, "snapshots", SNAPSHOTTER)
        out += [k.decode() for k, r in records.items.items() if isinstance(r, bbolt.Bucket) and "containerd.io/gc.root" in _labels(r)]
    return content, snapshots


def rmi_effect(root: str, ref: str) -> dict:
    """What ``docker rmi ref`` followed by containerd's garbage collection would do.

    ``{"removed_content", "removed_snapshots", "kept_content", "kept_snapshots"}``, each
    sorted: what the collector deletes once the image record is gone, and which of the image's
    own blobs and snapshots survive because something else (another image, a container's
    lease) still refers to them.
    """
    # Solution: mark from every root (images, leases, containers, gc.root labels) with and
    # without this image's record; the difference is what the collector sweeps. Only the
    # record named goes: another tag of the same image keeps everything.
    name, record = _record(root, ref)
    before = _mark(root, *_gc_roots(root))
    after = _mark(root, *_gc_roots(root, skip_image=name))
    own = _mark(root, [_text(_sub(record, "target").get("digest")) or ""], [])
    return {
        "removed_content": sorted(before[0] - after[0]),
        "removed_snapshots": sorted(before[1] - after[1]),
        "kept_content": sorted(own[0] & after[0]),
        "kept_snapshots": sorted(own[1] & after[1]),
    }


# -- task 6: the same image in both stores -------------------------------------------------------


def compare_stores(docker_root: str, containerd_root: str, ref: str) -> list[dict]:
    """Image ``ref`` in a classic Docker root and in a containerd root, layer by layer, base first.

    Each row: ``layer_id`` (the DiffID), ``db_id`` (the classic layer DB's directory),
    ``snapshot_key`` (containerd's key), ``cache_id`` (overlay2's random directory) and
    ``snapshot_id`` (containerd's counter). db id and snapshot key are the same ChainID.
    """
    # Solution: both stores key layers by ChainID; only the directory names differ: a random
    # cache-id in overlay2, a sequence number in the snapshotter.
    layer_ids = image_layer_ids(docker_root, ref)
    keys = image_snapshot_keys(containerd_root, ref)
    if image_diff_ids(containerd_root, ref) != layer_ids:
        raise UnknownReferenceError(containerd_root, f"{ref!r} is not the same image in both roots")
    rows = []
    for layer_id, db_id, key in zip(layer_ids, chain_ids(layer_ids), keys):
        rows.append(
            {
                "layer_id": layer_id,
                "db_id": db_id,
                "snapshot_key": key,
                "cache_id": read_layer(docker_root, db_id)["cache_id"],
                "snapshot_id": read_snapshot(containerd_root, key)["id"],
            }
        )
    return rows
