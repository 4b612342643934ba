"""Lab 3 — the containerd image store: where Docker 29 really keeps nginx.

Every function takes ``root``, a containerd root (``/var/lib/containerd`` on a Docker 29 host,
or a fake one), and reads only files under it; task 6 also takes a classic Docker root. Docker
keeps its images in containerd's namespace ``moby`` with the ``overlayfs`` snapshotter.

Glossary: digest = sha256 of a content blob (index, manifest, config, gzip layer); DiffID =
lab 1's layer id; ChainID = lab 1's db id = a committed snapshot's key; snapshot id = the
number naming ``snapshots/<id>/`` (a counter, not random, never reused).

Errors: every error of ``fakeroot_builder.errors`` takes ``(path, problem)``: the file or
directory at fault and what is wrong with it, e.g.
``raise UnknownReferenceError(meta_db_path, f"no image called {ref!r}")``.

The two databases are bbolt files; ``_bolt`` (given) reads one into nested buckets whose keys
and values are bytes. Its twin in ``solutions/`` is the reference reader that ``dockerlab
inspect`` uses on a containerd root; yours runs the same way with ``--impl labs``.
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
    # TODO: task 1: list the keys of the bucket v1/moby/images of meta.db (use _namespace).
    raise NotImplementedError("task 1: image_names() is not written yet")


def image_target(root: str, ref: str) -> dict:
    """The image record ``ref`` names, as ``ctr -n moby images ls`` shows it.

    ``ref`` may be ``nginx``, ``nginx:1.25``, ``docker.io/library/nginx:latest``,
    ``nginx@sha256:…`` or an image id (full, or a unique prefix). Returns ``{"name",
    "digest", "media_type", "size"}`` of the record's ``target``; its digest is the image id
    Docker 29 shows.
    """
    # TODO: task 1: normalize ref as Docker does ("nginx" → "docker.io/library/nginx:latest",
    #   "user/app" → "docker.io/user/app:latest", keep a registry host) and read
    #   images/<name>/target: digest, mediatype, size (a zigzag varint: _varint). A
    #   name@sha256:… matches a record of that repository with this target digest; an id (or a
    #   unique prefix) matches a target digest. Unknown or ambiguous →
    #   raise UnknownReferenceError(meta_db_path, problem).
    raise NotImplementedError("task 1: image_target() is not written yet")


def blob_path(root: str, digest: str) -> str:
    """The file holding the content blob ``digest``: ``…content.v1.content/blobs/sha256/<hex>``."""
    # TODO: task 1: the content store keeps each blob in a file named by its digest's hex,
    #   under a directory named by its algorithm. A blob that is not there →
    #   raise MissingEntryError(blob_file, problem).
    raise NotImplementedError("task 1: blob_path() is not written yet")


def image_manifest(root: str, ref: str) -> str:
    """The digest of the image's manifest: its target, or, when the target is an index, the
    entry for linux/amd64 whose blob is in the content store."""
    # TODO: task 1: if the target's media type is an index (OCI index or Docker manifest list),
    #   read it and pick the linux/amd64 manifest whose blob is present; else the target is
    #   the manifest.
    raise NotImplementedError("task 1: image_manifest() is not written yet")


def image_config(root: str, ref: str) -> str:
    """The digest of the image's config (the manifest's ``config.digest``)."""
    # TODO: task 1: read the manifest blob (JSON) and return its config descriptor's digest.
    raise NotImplementedError("task 1: image_config() is not written yet")


# -- task 2: compressed digest ↔ DiffID ------------------------------------------------------------


def layer_digests(root: str, ref: str) -> list[str]:
    """The digests of the image's layer blobs (compressed), base first: the manifest's ``layers``."""
    # TODO: task 2: the manifest's layers, base first: their digests.
    raise NotImplementedError("task 2: layer_digests() is not written yet")


def image_diff_ids(root: str, ref: str) -> list[str]:
    """The image's DiffIDs (lab 1's layer ids), base first: its config's ``rootfs.diff_ids``."""
    # TODO: task 2: the config blob's rootfs.diff_ids.
    raise NotImplementedError("task 2: image_diff_ids() is not written yet")


def diff_id_of(root: str, digest: str) -> str:
    """The DiffID of the layer blob ``digest``: its ``containerd.io/uncompressed`` label."""
    # TODO: task 2: the label containerd.io/uncompressed of content/blob/<digest> in meta.db
    #   (use _labels). No such label → raise MissingEntryError(where, problem).
    raise NotImplementedError("task 2: diff_id_of() is not written yet")


def blobs_of_diff_id(root: str, diff_id: str) -> list[str]:
    """Every blob whose ``containerd.io/uncompressed`` label is ``diff_id``, sorted."""
    # TODO: task 2: every content record whose containerd.io/uncompressed label is diff_id.
    raise NotImplementedError("task 2: blobs_of_diff_id() is not written yet")


# -- task 3: DiffIDs → ChainIDs → snapshot keys → snapshot ids → snapshots/<id>/fs ------------------


def image_snapshot_keys(root: str, ref: str) -> list[str]:
    """The keys of the image's committed snapshots, base first: the ChainIDs of its DiffIDs."""
    # TODO: task 3: ChainIDs of the image's DiffIDs: use lab 1's chain_ids (imported above).
    raise NotImplementedError("task 3: image_snapshot_keys() is not written yet")


def read_snapshot(root: str, key: str) -> dict:
    """The snapshot ``key`` as both databases record it.

    ``{"key", "name", "id", "kind", "parent"}``: ``name`` is ``moby/<n>/<key>`` from
    ``meta.db`` (``n`` is NOT the directory number), ``id`` the snapshotter's id from
    ``metadata.db`` (the directory ``snapshots/<id>``), ``kind`` ``committed``, ``active`` or
    ``view``, ``parent`` the parent's key or None.
    """
    # TODO: task 3: meta.db: v1/moby/snapshots/overlayfs/<key> has name and parent (no record
    #   → raise UnknownReferenceError(meta_db_path, problem)); the snapshotter's metadata.db
    #   (under io.containerd.snapshotter.v1.overlayfs/) has v1/snapshots/<name> with id and
    #   kind, both uvarints (_uvarint); kinds 1 view, 2 active, 3 committed.
    raise NotImplementedError("task 3: read_snapshot() is not written yet")


def snapshot_dir(root: str, key: str) -> str:
    """The directory holding the files of snapshot ``key``: ``…overlayfs/snapshots/<id>/fs``."""
    # TODO: task 3: snapshots/<id>/fs under the snapshotter's directory; missing →
    #   raise MissingEntryError(fs_dir, problem).
    raise NotImplementedError("task 3: snapshot_dir() is not written yet")


# -- task 4: a container's mount -----------------------------------------------------------------


def container_mount(root: str, container: str) -> dict:
    """The overlay mount of ``container`` (full id or unique prefix), as containerd gives it.

    ``{"lowerdir": [<fs of the -init snapshot>, <fs of the image's top layer>, …, <fs of the
    base>], "upperdir": <fs of the container's snapshot>, "workdir": <its work dir>}``.
    """
    # TODO: task 4: find the active snapshot keyed by the container id (or a unique prefix of
    #   one; else raise UnknownReferenceError(meta_db_path, problem)), follow parent keys down
    #   to the base (a loop → raise ParentCycleError(meta_db_path, problem)), each to its fs
    #   directory; upperdir and workdir are the container snapshot's own fs and work.
    raise NotImplementedError("task 4: container_mount() is not written yet")


# -- task 5: what `docker rmi` would leave: garbage-collection references -----------------------


def gc_refs(root: str, digest: str) -> dict:
    """What the content blob ``digest`` keeps alive: ``{"content": [...], "snapshots": [...]}``.

    Read from its ``containerd.io/gc.ref.content…`` and ``containerd.io/gc.ref.snapshot.overlayfs…``
    labels, each list sorted.
    """
    # TODO: task 5: collect the values of the record's labels containerd.io/gc.ref.content… and
    #   containerd.io/gc.ref.snapshot.overlayfs… (exact key, or the key followed by . or /).
    raise NotImplementedError("task 5: gc_refs() is not written yet")


def rmi_effect(root: str, ref: str) -> dict:
    """What ``docker rmi ref`` followed by containerd's garbage collection would do.

    ``{"removed_content", "removed_snapshots", "kept_content", "kept_snapshots"}``, each
    sorted: what the collector deletes once the image record is gone, and which of the image's
    own blobs and snapshots survive because something else (another image, a container's
    lease) still refers to them.
    """
    # TODO: task 5: roots: every image's target, each lease's content and snapshots/overlayfs,
    #   each container's snapshotKey, records labelled containerd.io/gc.root. Mark what they
    #   reach (gc_refs for content, parent for snapshots) with and without the image record
    #   ref names; also mark from that record alone to know what was the image's own.
    raise NotImplementedError("task 5: rmi_effect() is not written yet")


# -- task 6: the same image in both stores -------------------------------------------------------


def compare_stores(docker_root: str, containerd_root: str, ref: str) -> list[dict]:
    """Image ``ref`` in a classic Docker root and in a containerd root, layer by layer, base first.

    Each row: ``layer_id`` (the DiffID), ``db_id`` (the classic layer DB's directory),
    ``snapshot_key`` (containerd's key), ``cache_id`` (overlay2's random directory) and
    ``snapshot_id`` (containerd's counter). db id and snapshot key are the same ChainID.
    """
    # TODO: task 6: lab 1 on the classic root (layer ids, db ids, cache-ids), tasks 2 and 3 on
    #   the containerd root (snapshot keys and ids); one row per layer, base first.
    raise NotImplementedError("task 6: compare_stores() is not written yet")
