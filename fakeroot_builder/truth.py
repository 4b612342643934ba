"""Ground truth: exactly what the builder wrote, for tests to take expected answers from.

Building a root returns a :class:`RootTruth`; ``dockerlab build --truth FILE`` writes it as JSON.
Graded tests compare a student's answers with these values, never with another implementation.

Two stores, one catalogue. ``RootTruth.store`` says which one a root holds:

- ``"classic"``: ``/var/lib/docker`` with the overlay2 driver (``image/overlay2/layerdb``…).
  ``images``, ``containers`` and every field of :class:`LayerTruth` describe files on disk.
- ``"containerd"``: a containerd root as Docker 29 leaves it (``/var/lib/containerd``, namespace
  ``moby``, snapshotter ``overlayfs``). ``images`` still give the content-addressed ids, which
  are the same in both stores (``layer_id`` = DiffID, ``db_id`` = ChainID = the snapshot key,
  ``compressed_digest``, ``image_id`` = the config digest); the classic-only names
  (``cache_id``, ``link``, ``lower``, a container's ``mount_id``/``init_id``/``link``…) exist
  on no disk there. Everything containerd-specific is in ``RootTruth.containerd``
  (:class:`ContainerdTruth`): the image records and their targets, every blob with its
  labels, every snapshot (key, ``moby/<seq>/<key>`` name, id, kind, parent, labels,
  directory), the containers' snapshots and leases, and both bucket sequences (the next
  snapshot id a real containerd will hand out is ``snapshot_sequence + 1``).

Typical look-ups for a graded test::

    ct = truth.containerd
    layer = truth.image("nginx:latest").layers[-1]
    snap = ct.snapshot(layer.db_id)           # key = ChainID
    snap.id, snap.fs_dir                      # 7, 'io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs'
    ct.blob(layer.compressed_digest).labels["containerd.io/uncompressed"] == layer.layer_id
    ct.image("nginx:latest").target_digest    # what v1/moby/images/<name>/target holds
    ct.container(cid).lowerdirs               # the container's overlay lowerdir, nearest first
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

__all__ = [
    "BlobTruth",
    "Changes",
    "ContainerTruth",
    "ContainerdContainerTruth",
    "ContainerdImageTruth",
    "ContainerdTruth",
    "ImageTruth",
    "LayerTruth",
    "LeaseTruth",
    "RootTruth",
    "SnapshotTruth",
]


@dataclass(frozen=True)
class Changes:
    """What one layer does to the layers below it; absolute paths, sorted."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerTruth:
    """One layer of an image's stack, with every id Docker gives it."""

    layer_id: str  #: DiffID, ``sha256:…`` of the uncompressed tar
    db_id: str  #: ChainID, the ``layerdb/sha256/<hex>`` directory
    cache_id: str  #: 64 hex, the ``overlay2/<cache-id>`` directory
    link: str  #: 26 chars, ``overlay2/l/<link>``
    parent: str | None  #: db id of the layer below; None for the base
    size: int  #: what ``layerdb/…/size`` holds
    compressed_digest: str  #: sha256 of the gzip blob a registry serves
    compressed_size: int  #: bytes of that blob
    lower: tuple[str, ...]  #: links of the layers below, nearest first (``lower`` file)
    changes: Changes = field(default_factory=Changes)

    @property
    def diff_dir(self) -> str:
        """The layer's files, relative to the root."""
        return f"overlay2/{self.cache_id}/diff"


@dataclass(frozen=True)
class ImageTruth:
    """An image on the host: how it is referred to, its id and its layers, base first."""

    name: str  #: catalogue name, e.g. ``nginx:latest``
    refs: tuple[str, ...]  #: keys of repositories.json pointing at it
    image_id: str
    manifest_digest: str | None  #: None for images built locally (never pulled)
    layers: tuple[LayerTruth, ...]

    @property
    def repo_tags(self) -> tuple[str, ...]:
        """The ``name:tag`` references (what ``docker images`` lists)."""
        return tuple(r for r in self.refs if "@" not in r)

    @property
    def layer_ids(self) -> tuple[str, ...]:
        """``rootfs.diff_ids``, base first."""
        return tuple(layer.layer_id for layer in self.layers)

    @property
    def db_ids(self) -> tuple[str, ...]:
        """ChainIDs, base first."""
        return tuple(layer.db_id for layer in self.layers)


@dataclass(frozen=True)
class ContainerTruth:
    """A container and the two overlay2 directories it owns."""

    id: str
    name: str
    image: str  #: what the user typed (``Config.Image``)
    image_id: str
    state: str  #: ``created`` or ``exited``
    mount_id: str  #: ``overlay2/<mount-id>``, the RW layer
    init_id: str  #: ``<mount-id>-init``
    link: str
    init_link: str
    parent: str  #: db id of the image's top layer
    lower: tuple[str, ...]  #: links below the RW layer, nearest (the init layer) first
    changes: Changes = field(default_factory=Changes)


#: Where the containerd store keeps things, relative to its root (``/var/lib/containerd``).
CONTENT_BLOBS = "io.containerd.content.v1.content/blobs/sha256"
OVERLAYFS_SNAPSHOTS = "io.containerd.snapshotter.v1.overlayfs/snapshots"


@dataclass(frozen=True)
class BlobTruth:
    """One blob of the content store and its record in ``meta.db`` (``v1/moby/content/blob``)."""

    digest: str
    size: int
    media_type: str  #: how the manifest (or image record) that refers to it describes it
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The blob's file, relative to the root."""
        return f"{CONTENT_BLOBS}/{self.digest.removeprefix('sha256:')}"


@dataclass(frozen=True)
class SnapshotTruth:
    """A snapshot as both databases record it, and its directory."""

    key: str  #: key in ``v1/moby/snapshots/overlayfs``: a ChainID, ``<container>-init`` or ``<container>``
    name: str  #: ``moby/<seq>/<key>``: the key of ``v1/snapshots`` in the snapshotter's metadata.db
    id: int  #: the directory ``snapshots/<id>/``
    kind: str  #: ``committed`` or ``active``
    parent: str | None  #: the parent snapshot's key
    labels: dict[str, str] = field(default_factory=dict)  #: meta.db labels (metadata.db keeps the inherited ones)
    inodes: int | None = None  #: usage recorded at commit (committed snapshots only)
    size: int | None = None

    @property
    def dir(self) -> str:
        """``…/snapshots/<id>``, relative to the root."""
        return f"{OVERLAYFS_SNAPSHOTS}/{self.id}"

    @property
    def fs_dir(self) -> str:
        """The snapshot's files (an overlay upper or lower dir), relative to the root."""
        return f"{self.dir}/fs"


@dataclass(frozen=True)
class ContainerdImageTruth:
    """An image in the containerd store: its records in ``v1/moby/images`` and what they point at."""

    name: str  #: catalogue name, e.g. ``nginx:latest`` (as in :class:`ImageTruth`)
    names: tuple[str, ...]  #: the image records' keys, e.g. ``docker.io/library/nginx:latest``
    target_digest: str  #: ``target/digest``: the manifest (Docker 29 shows it as the image id)
    target_media_type: str
    target_size: int
    config_digest: str  #: the config blob (the classic store's image id)
    layer_digests: tuple[str, ...]  #: compressed layer blobs, base first
    chain_ids: tuple[str, ...]  #: snapshot keys of the layers, base first
    pulled: bool  #: pulled from a registry (else built on this host)


@dataclass(frozen=True)
class LeaseTruth:
    """A lease in ``v1/moby/leases``: what it keeps from the garbage collector."""

    id: str
    snapshots: tuple[str, ...] = ()  #: keys under ``snapshots/overlayfs``
    content: tuple[str, ...] = ()  #: digests under ``content``


@dataclass(frozen=True)
class ContainerdContainerTruth:
    """A Docker container in the containerd store: an active snapshot on its committed ``-init``."""

    id: str
    name: str
    image: str  #: catalogue name of its image
    snapshot: str  #: key of its active snapshot (the container id)
    init_snapshot: str  #: key of the committed ``<id>-init`` snapshot, the active one's parent
    lease: str  #: the lease holding both (named by the container id)
    image_top: str  #: the image's top ChainID, the ``-init`` snapshot's parent
    upperdir: str  #: relative to the root
    lowerdirs: tuple[str, ...]  #: relative to the root, nearest (the ``-init`` fs) first


@dataclass(frozen=True)
class ContainerdTruth:
    """Everything containerd-specific a containerd root holds (see the module docstring)."""

    namespace: str
    snapshotter: str
    db_version: int  #: ``v1/version`` of meta.db
    images: tuple[ContainerdImageTruth, ...]
    blobs: tuple[BlobTruth, ...]
    snapshots: tuple[SnapshotTruth, ...]  #: in id order
    containers: tuple[ContainerdContainerTruth, ...]
    leases: tuple[LeaseTruth, ...]
    meta_sequence: int  #: sequence of ``v1/moby/snapshots/overlayfs`` in meta.db (the ``<seq>`` of names)
    snapshot_sequence: int  #: sequence of ``v1/snapshots`` in metadata.db (the last id handed out)

    @property
    def next_snapshot_id(self) -> int:
        """The id a real containerd gives the next snapshot it prepares on this root."""
        return self.snapshot_sequence + 1

    def image(self, ref: str) -> ContainerdImageTruth:
        """The image called ``ref``: catalogue name or image record name."""
        for image in self.images:
            if ref == image.name or ref in image.names:
                return image
        raise KeyError(f"no image {ref!r} in this containerd root")

    def blob(self, digest: str) -> BlobTruth:
        for blob in self.blobs:
            if blob.digest == digest:
                return blob
        raise KeyError(f"no blob {digest} in this containerd root")

    def snapshot(self, key: str) -> SnapshotTruth:
        """The snapshot with this key (a ChainID, ``<id>-init`` or a container id)."""
        for snap in self.snapshots:
            if snap.key == key:
                return snap
        raise KeyError(f"no snapshot {key!r} in this containerd root")

    def image_snapshots(self, ref: str) -> tuple[SnapshotTruth, ...]:
        """The committed snapshots of an image's layers, base first (keys = its ChainIDs)."""
        return tuple(self.snapshot(key) for key in self.image(ref).chain_ids)

    def container(self, cid: str) -> ContainerdContainerTruth:
        for container in self.containers:
            if cid in (container.id, container.name):
                return container
        raise KeyError(f"no container {cid!r} in this containerd root")


@dataclass(frozen=True)
class RootTruth:
    """Everything a build wrote that a test may ask about."""

    seed: int
    host_seed: int
    images: tuple[ImageTruth, ...]
    containers: tuple[ContainerTruth, ...] = ()
    notes: tuple[str, ...] = ()  #: how the root deviates from a daemon's (e.g. degraded whiteouts)
    store: str = "classic"  #: ``classic`` (/var/lib/docker, overlay2) or ``containerd`` (Docker 29)
    containerd: ContainerdTruth | None = None  #: the containerd store's ids (``store == "containerd"``)
    #: How the builder wrote what a root daemon writes with privileges, by kind (a kind is
    #: absent when the root holds none): ``whiteout``: ``device`` (a 0/0 character device, as a
    #: daemon), ``trusted.overlay.whiteout`` / ``user.overlay.whiteout`` (an empty mode-0000 file
    #: with that xattr) or ``mode-0000 file`` (no xattrs); ``opaque``: the xattr name set to ``y``
    #: (``trusted.overlay.opaque``, else ``user.overlay.opaque``) or ``unmarked``;
    #: ``kernel_xattrs``: ``trusted.overlay.*``, ``user.overlay.*`` or ``unmarked``; ``owners``:
    #: ``as in the layer tars`` (root) or ``yours`` (everything owned by the builder's user).
    forms: dict[str, str] = field(default_factory=dict)

    def image(self, ref: str) -> ImageTruth:
        """The image called ``ref`` (catalogue name, tag or digest reference)."""
        for image in self.images:
            if ref == image.name or ref in image.refs:
                return image
        raise KeyError(f"no image {ref!r} in this root; it has {[i.name for i in self.images]}")

    def container(self, name_or_id: str) -> ContainerTruth:
        """The container with this name or id."""
        for container in self.containers:
            if name_or_id in (container.id, container.name):
                return container
        raise KeyError(f"no container {name_or_id!r} in this root")

    def layers(self) -> dict[str, LayerTruth]:
        """Every distinct layer of the root, by db id."""
        return {layer.db_id: layer for image in self.images for layer in image.layers}

    def to_json(self) -> str:
        """The truth as JSON (``dockerlab build --truth``); ``diff_dir`` is included for readers."""
        return json.dumps(_jsonable(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RootTruth:
        """Read back what :meth:`to_json` wrote."""
        return _load(cls, json.loads(text))


#: Properties written beside the fields, for readers of the JSON.
_EXTRAS: dict[type, tuple[str, ...]] = {LayerTruth: ("diff_dir",), BlobTruth: ("path",), SnapshotTruth: ("dir", "fs_dir")}


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls)) + _EXTRAS.get(cls, ())


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _jsonable(getattr(obj, name)) for name in _field_names(type(obj))}
    if isinstance(obj, dict):
        return {key: _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_jsonable(x) for x in obj]
    return obj


def _changes(data: dict[str, list[str]]) -> Changes:
    return Changes(*(tuple(data[k]) for k in ("added", "changed", "deleted", "opaque")))


def _layer(d: dict[str, Any]) -> LayerTruth:
    return LayerTruth(
        d["layer_id"], d["db_id"], d["cache_id"], d["link"], d["parent"], d["size"],
        d["compressed_digest"], d["compressed_size"], tuple(d["lower"]), _changes(d["changes"]),
    )


def _load(cls: Any, data: Any) -> Any:
    """Rebuild a :class:`RootTruth` from its JSON form (explicit, and fast enough for every test run)."""
    assert cls is RootTruth
    images = tuple(
        ImageTruth(i["name"], tuple(i["refs"]), i["image_id"], i["manifest_digest"], tuple(_layer(x) for x in i["layers"]))
        for i in data["images"]
    )
    containers = tuple(
        ContainerTruth(**{**c, "lower": tuple(c["lower"]), "changes": _changes(c["changes"])})
        for c in data["containers"]
    )
    ctd = data.get("containerd")
    return RootTruth(
        data["seed"], data["host_seed"], images, containers, tuple(data["notes"]),
        data.get("store", "classic"), _containerd(ctd) if ctd else None, dict(data.get("forms", {})),
    )


def _containerd(d: dict[str, Any]) -> ContainerdTruth:
    def tupled(cls: Any, item: dict[str, Any]) -> Any:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in item.items()})

    return ContainerdTruth(
        d["namespace"], d["snapshotter"], d["db_version"],
        tuple(tupled(ContainerdImageTruth, x) for x in d["images"]),
        tuple(BlobTruth(**{k: v for k, v in x.items() if k != "path"}) for x in d["blobs"]),
        tuple(SnapshotTruth(**{k: v for k, v in x.items() if k not in ("dir", "fs_dir")}) for x in d["snapshots"]),
        tuple(tupled(ContainerdContainerTruth, x) for x in d["containers"]),
        tuple(tupled(LeaseTruth, x) for x in d["leases"]),
        d["meta_sequence"], d["snapshot_sequence"],
    )
