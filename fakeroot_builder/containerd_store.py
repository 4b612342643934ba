"""The same catalogue as a containerd root, laid out as Docker 29 leaves ``/var/lib/containerd``.

Docker Engine 29 keeps images in containerd (namespace ``moby``, snapshotter ``overlayfs``). This
module replays what such a host did, in the classic plan's order (pull each image, build the
local ones, create the containers), and records what containerd would have written:

- content blobs: the classic store's gzip layers, manifests and configs, byte for byte (so the
  digests agree), each with its ``meta.db`` record and labels (``containerd.io/uncompressed``,
  ``gc.ref.content.*``, ``gc.ref.snapshot.overlayfs``, ``distribution.source.<host>``);
- snapshots: unpacking prepares ``extract-<n> <ChainID>`` and commits it under the ChainID,
  keeping the snapshotter id; both take a number from their bucket's sequence (meta.db's
  ``v1/moby/snapshots/overlayfs`` for the ``moby/<seq>/<key>`` name, metadata.db's
  ``v1/snapshots`` for the id and so ``snapshots/<id>/``). Removed snapshots (the classic
  builder's step containers and views) leave gaps, as on a real host;
- a container (moby's ``PrepareSnapshot``): a lease named by its id, ``<id>-init-key`` prepared
  on the image's top ChainID and committed as ``<id>-init``, then the active ``<id>`` on top;
- ``meta.db`` at dbVersion 4 (containerd 2.x) and the snapshotter's ``metadata.db``, written by
  :mod:`fakeroot_builder.bbolt` with their bucket sequences, so a real containerd allocates
  the next id.

Not written: Docker's own ``/var/lib/docker`` (``containers/<id>/config.v2.json``…), which
Docker 29 keeps in a different root; the build target is the containerd root only. Docker deletes
the containerd *container* record when a container stops, so a root whose containers are all
created or exited has none (only the empty ``containers`` bucket once one has run).

Everything random comes from the host seed: times, the introspection uuid, and the containers
the user ran with ``--rm`` between two pulls (gone, but their numbers stay used, so snapshot ids
differ from host to host as on real machines). Digests and keys come from the plan. Same seeds,
same bytes.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from . import documents
from .formats import source_repository
from .layer import Layer, sha256_digest
from .plan import ContainerPlan, ImagePlan, LayerPlan, Plan
from .seeds import derived_seed
from .truth import (
    BlobTruth,
    ContainerdContainerTruth,
    ContainerdImageTruth,
    ContainerdTruth,
    LeaseTruth,
    RootTruth,
    SnapshotTruth,
)
from .writer import _Writer

__all__ = [
    "CONTENT_DIR",
    "META_DB",
    "NAMESPACE",
    "SNAPSHOTTER",
    "SNAPSHOTTER_DIR",
    "ContainerdPlan",
    "plan_containerd",
    "write_containerd",
]

NAMESPACE = "moby"
SNAPSHOTTER = "overlayfs"
DB_VERSION = 4  # containerd 2.x (1.6 writes 3)
CONTENT_DIR = "io.containerd.content.v1.content"
META_DIR = "io.containerd.metadata.v1.bolt"
META_DB = f"{META_DIR}/meta.db"
SNAPSHOTTER_DIR = "io.containerd.snapshotter.v1.overlayfs"
SNAPSHOTTER_DB = f"{SNAPSHOTTER_DIR}/metadata.db"

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

LABEL_UNCOMPRESSED = "containerd.io/uncompressed"
LABEL_SNAPSHOT_REF = "containerd.io/snapshot.ref"
LABEL_GC_SNAPSHOT = f"containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"
# what moby's pull adds to each layer (containerd's snapshotters.AppendInfoHandlerWrapper)
LABEL_CRI_IMAGE_REF = "containerd.io/snapshot/cri.image-ref"
LABEL_CRI_LAYER_DIGEST = "containerd.io/snapshot/cri.layer-digest"
LABEL_CRI_IMAGE_LAYERS = "containerd.io/snapshot/cri.image-layers"
LABEL_CRI_MANIFEST_DIGEST = "containerd.io/snapshot/cri.manifest-digest"
_LABEL_MAX = 4096  # containerd's labels.Validate: len(key) + len(value)

#: Directories of the root and their modes, as containerd 2.x leaves them (reference v2-find-*).
_ROOT_DIRS: tuple[tuple[str, int], ...] = (
    (CONTENT_DIR, 0o755),
    (f"{CONTENT_DIR}/blobs", 0o755),
    (f"{CONTENT_DIR}/blobs/sha256", 0o755),
    (f"{CONTENT_DIR}/ingest", 0o755),
    ("io.containerd.grpc.v1.introspection", 0o700),
    (META_DIR, 0o711),
    ("io.containerd.runtime.v2.task", 0o711),
    ("io.containerd.sandbox.controller.v1.shim", 0o700),
    ("io.containerd.snapshotter.v1.native", 0o700),
    ("io.containerd.snapshotter.v1.native/snapshots", 0o700),
    (SNAPSHOTTER_DIR, 0o700),
    (f"{SNAPSHOTTER_DIR}/snapshots", 0o700),
    ("tmpmounts", 0o700),
)
#: Every top-level name the builder writes (safety.looks_built accepts these).
ROOT_NAMES = frozenset(name.split("/", 1)[0] for name, _ in _ROOT_DIRS)


# -- encodings (Go's, as containerd stores them) -------------------------------------------------


def uvarint(value: int) -> bytes:
    """``binary.PutUvarint``: ids, and the parts of ``v1/parents`` keys."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint(value: int) -> bytes:
    """``binary.PutVarint`` (zigzag): sizes, inodes, ``v1/version``."""
    return uvarint((value << 1) ^ (value >> 63) if value < 0 else value << 1)


_GO_EPOCH = datetime(1, 1, 1, tzinfo=timezone.utc)


def go_time_binary(moment: datetime, nanos: int) -> bytes:
    """``time.Time.MarshalBinary`` of a UTC time: version 1, seconds since year 1, nanoseconds,
    zone offset -1 (UTC): 15 bytes."""
    seconds = int((moment - _GO_EPOCH).total_seconds())
    return b"\x01" + seconds.to_bytes(8, "big") + nanos.to_bytes(4, "big") + b"\xff\xff"


# -- the plan ------------------------------------------------------------------------------------


@dataclass
class _Blob:
    data: bytes
    media_type: str
    created: bytes
    updated: bytes
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Snapshot:
    key: str
    seq: int
    id: int
    kind: str  # "committed" | "active"
    parent: str | None
    labels: dict[str, str]
    created: bytes  # meta.db (createdat = updatedat)
    sn_created: bytes  # metadata.db
    layer: Layer
    xattrs: dict[str, dict[str, bytes]] = field(default_factory=dict)  # what overlayfs wrote (mounted)
    work_work: bool = False  # mounted once: work/work (0000) exists
    leftover: str | None = None  # overlayfs's leftover whiteout in work/work

    @property
    def usage(self) -> tuple[int, int] | None:
        return disk_usage(self.layer) if self.kind == "committed" else None


@dataclass
class _Image:
    name: str
    target: tuple[str, str, int]  # digest, media type, size
    created: bytes


@dataclass
class _Lease:
    id: str
    created: bytes
    snapshots: list[str]


@dataclass
class ContainerdPlan:
    """What the containerd root holds, in memory; :func:`write_containerd` puts it on disk."""

    plan: Plan
    blobs: dict[str, _Blob]
    snapshots: list[_Snapshot]
    images: list[_Image]
    image_truths: list[ContainerdImageTruth]
    leases: list[_Lease]
    containers: list[ContainerdContainerTruth]
    meta_sequence: int
    snapshot_sequence: int
    containers_bucket: bool  # a container has run (the bucket stays, emptied, after it stopped)
    task_namespace: bool  # io.containerd.runtime.v2.task/moby exists (a task has run)
    introspection_uuid: str

    def containerd_truth(self) -> ContainerdTruth:
        blobs = tuple(
            BlobTruth(digest, len(b.data), b.media_type, dict(sorted(b.labels.items())))
            for digest, b in sorted(self.blobs.items())
        )
        snaps = []
        for s in self.snapshots:
            usage = s.usage
            snaps.append(SnapshotTruth(
                s.key, f"{NAMESPACE}/{s.seq}/{s.key}", s.id, s.kind, s.parent, dict(sorted(s.labels.items())),
                usage[0] if usage else None, usage[1] if usage else None,
            ))
        return ContainerdTruth(
            namespace=NAMESPACE,
            snapshotter=SNAPSHOTTER,
            db_version=DB_VERSION,
            images=tuple(self.image_truths),
            blobs=blobs,
            snapshots=tuple(snaps),
            containers=tuple(self.containers),
            leases=tuple(LeaseTruth(lease.id, tuple(sorted(lease.snapshots))) for lease in self.leases),
            meta_sequence=self.meta_sequence,
            snapshot_sequence=self.snapshot_sequence,
        )

    def truth(self, notes: list[str] | tuple[str, ...] = ()) -> RootTruth:
        """The root's truth: the catalogue's ids plus :class:`ContainerdTruth`."""
        from dataclasses import replace

        return replace(self.plan.truth(notes), store="containerd", containerd=self.containerd_truth())


class _Host:
    """Replays the host's history, handing out sequence numbers and times as containerd would."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.random = random.Random(derived_seed(plan.host_seed, "containerd"))
        self.clock = datetime(2025, 11, 15, tzinfo=timezone.utc) + timedelta(
            seconds=self.random.uniform(0, 2e7)
        )
        self.meta_seq = 0
        self.snap_seq = 0
        self.blobs: dict[str, _Blob] = {}
        self.snapshots: list[_Snapshot] = []
        self.by_key: dict[str, _Snapshot] = {}
        self.images: list[_Image] = []
        self.image_truths: list[ContainerdImageTruth] = []
        self.leases: list[_Lease] = []
        self.containers: list[ContainerdContainerTruth] = []
        self.uuid = str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    # time ---------------------------------------------------------------------------------------
    def now(self, lo: float = 0.0005, hi: float = 0.05) -> bytes:
        self.clock += timedelta(seconds=self.random.uniform(lo, hi))
        return go_time_binary(self.clock.replace(microsecond=0), self.clock.microsecond * 1000 + self.random.randrange(1000))

    def later(self) -> None:
        """Minutes pass between two things the user did; maybe a ``docker run --rm`` or two.

        A container run and removed in between leaves nothing but numbers used up (three names,
        two ids): this is why the snapshot ids of the same images differ from host to host.
        """
        self.clock += timedelta(seconds=self.random.uniform(30, 1800))
        if self.by_key:
            for _ in range(self.random.choice((0, 0, 1, 2))):
                self.prepare()  # <id>-init-key
                self.commit()  # <id>-init
                self.prepare()  # <id>
                self.clock += timedelta(seconds=self.random.uniform(1, 120))

    # the two sequences --------------------------------------------------------------------------
    def prepare(self) -> tuple[int, int]:
        """A snapshot prepared (or viewed): a meta.db name and a snapshotter id."""
        self.meta_seq += 1
        self.snap_seq += 1
        return self.meta_seq, self.snap_seq

    def commit(self) -> int:
        """An active snapshot committed under a new key: a new name, the same id."""
        self.meta_seq += 1
        return self.meta_seq

    def unpack(self, lp: LayerPlan, labels: dict[str, str]) -> None:
        """``extract-<n> <ChainID>`` prepared, the layer applied to its fs, committed as the ChainID."""
        _, sid = self.prepare()
        self.now()
        seq = self.commit()
        parent = lp.parent.db_id if lp.parent else None
        self._add(_Snapshot(lp.db_id, seq, sid, "committed", parent, labels, self.now(), self.now(1e-5, 1e-4), lp.layer))

    def _add(self, snap: _Snapshot) -> None:
        self.snapshots.append(snap)
        self.by_key[snap.key] = snap

    # content ------------------------------------------------------------------------------------
    def blob(self, data: bytes, media_type: str, labels: dict[str, str] | None = None) -> _Blob:
        digest = sha256_digest(data)
        blob = self.blobs.get(digest)
        if blob is None:
            when = self.now()
            blob = self.blobs[digest] = _Blob(data, media_type, when, when)
        if labels:
            blob.labels.update(labels)
            blob.updated = self.now()
        return blob

    def add_source(self, blob: _Blob, host: str, repo: str) -> None:
        """``containerd.io/distribution.source.<host>``: the repositories, sorted, comma-separated."""
        key = f"containerd.io/distribution.source.{host}"
        repos = set(filter(None, blob.labels.get(key, "").split(","))) | {repo}
        blob.labels[key] = ",".join(sorted(repos))

    # what the user did --------------------------------------------------------------------------
    def pull(self, ip: ImagePlan) -> None:
        """``docker pull``: fetch manifest, config, layers; unpack the missing snapshots; name it."""
        self.later()
        assert ip.manifest_bytes is not None
        host, repo, names = _names(ip)
        ref = names[0]
        manifest_digest = sha256_digest(ip.manifest_bytes)
        config_digest = ip.image_id
        manifest = self.blob(ip.manifest_bytes, documents.MEDIA_MANIFEST)
        manifest.labels["containerd.io/gc.ref.content.config"] = config_digest
        for i, lp in enumerate(ip.layers):
            manifest.labels[f"containerd.io/gc.ref.content.l.{i}"] = lp.layer.compressed_digest
        self.add_source(manifest, host, repo)
        manifest.updated = self.now()  # the children's labels are set after the manifest is written
        config = self.blob(ip.config_bytes, documents.MEDIA_CONFIG)
        self.add_source(config, host, repo)
        config.updated = self.now()
        digests = [lp.layer.compressed_digest for lp in ip.layers]
        for i, lp in enumerate(ip.layers):
            if lp.db_id in self.by_key:
                continue  # unpacked already: the unpacker neither fetches nor labels this layer
            layer = self.blob(lp.layer.blob, documents.MEDIA_LAYER)
            self.add_source(layer, host, repo)
            labels = {
                LABEL_SNAPSHOT_REF: lp.db_id,
                LABEL_CRI_IMAGE_REF: ref,
                LABEL_CRI_LAYER_DIGEST: lp.layer.compressed_digest,
                LABEL_CRI_IMAGE_LAYERS: _image_layers(digests[i:]),
                LABEL_CRI_MANIFEST_DIGEST: manifest_digest,
            }
            self.unpack(lp, labels)
            layer.labels[LABEL_UNCOMPRESSED] = lp.layer.diff_id
            layer.updated = self.now()
        config.labels[LABEL_GC_SNAPSHOT] = ip.layers[-1].db_id
        config.updated = self.now()
        target = (manifest_digest, documents.MEDIA_MANIFEST, len(ip.manifest_bytes))
        self.images.append(_Image(names[0], target, self.now()))
        for name in names[1:]:  # `docker tag`, later
            self.later()
            self.images.append(_Image(name, target, self.now()))
        self.image_truths.append(_image_truth(ip, names, target, pulled=True))

    def build(self, ip: ImagePlan) -> None:
        """``docker build`` with the classic builder on the containerd store (moby's CommitImage).

        Each step runs in a container (``-init`` and active snapshots, a view of the parent for
        the diff), which is removed afterwards: gaps in both sequences. A step with a layer
        applies its diff to a new snapshot committed under the ChainID (no labels).
        """
        self.later()
        own = [s for s in ip.recipe.steps if s.layer is not None]
        base_count = len(ip.layers) - len(own)
        for lp in ip.layers[:base_count]:
            if lp.db_id not in self.by_key:  # FROM an image this root does not name: its layers only
                self.blob(lp.layer.blob, documents.MEDIA_LAYER, {LABEL_UNCOMPRESSED: lp.layer.diff_id})
                self.unpack(lp, {LABEL_SNAPSHOT_REF: lp.db_id})
        layers_iter = iter(ip.layers[base_count:])
        for step in ip.recipe.steps:
            self.prepare()  # <container>-init-key
            self.commit()  # <container>-init
            self.prepare()  # <container>
            self.prepare()  # <parent>-parent-view-<n> (rootfs.CreateDiff)
            self.now(0.5, 3)
            if step.layer is not None:
                lp = next(layers_iter)
                self.blob(lp.layer.blob, MEDIA_OCI_LAYER_GZIP, {LABEL_UNCOMPRESSED: lp.layer.diff_id})
                self.unpack(lp, {})
        _, repo, names = _names(ip)
        descriptors = []
        for i, lp in enumerate(ip.layers):
            media = documents.MEDIA_LAYER if i < base_count else MEDIA_OCI_LAYER_GZIP
            descriptors.append({"mediaType": media, "digest": lp.layer.compressed_digest, "size": len(lp.layer.blob)})
        manifest_bytes = documents.go_json({
            "mediaType": MEDIA_OCI_MANIFEST,
            "schemaVersion": 2,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": ip.image_id, "size": len(ip.config_bytes)},
            "layers": descriptors,
        }, indent="    ")
        labels = {"containerd.io/gc.ref.content.0": ip.image_id}
        for i, lp in enumerate(ip.layers):
            labels[f"containerd.io/gc.ref.content.{i + 1}"] = lp.layer.compressed_digest
        self.blob(manifest_bytes, MEDIA_OCI_MANIFEST, labels)
        self.blob(ip.config_bytes, MEDIA_OCI_CONFIG, {LABEL_GC_SNAPSHOT: ip.layers[-1].db_id})
        target = (sha256_digest(manifest_bytes), MEDIA_OCI_MANIFEST, len(manifest_bytes))
        for name in names:
            self.images.append(_Image(name, target, self.now()))
        self.image_truths.append(_image_truth(ip, names, target, pulled=False))

    def create_container(self, cp: ContainerPlan) -> None:
        """moby's PrepareSnapshot: lease ``<id>``, ``<id>-init-key`` → ``<id>-init``, active ``<id>``."""
        self.later()
        top = cp.image.layers[-1]
        lease = _Lease(cp.id, self.now(), [])
        self.leases.append(lease)
        _, init_sid = self.prepare()
        self.now(0.01, 0.2)  # mounted; moby's initlayer writes /etc/hosts, /dev/… through it
        seq = self.commit()
        init_key = f"{cp.id}-init"
        self._add(_Snapshot(
            init_key, seq, init_sid, "committed", top.db_id, {}, self.now(), self.now(1e-5, 1e-4), cp.init,
            xattrs=cp.kernel_xattrs.get(f"{cp.mount_id}-init/diff", {}), work_work=True, leftover=cp.work_leftovers[0],
        ))
        seq, sid = self.prepare()
        self._add(_Snapshot(
            cp.id, seq, sid, "active", init_key, {}, self.now(), self.now(1e-5, 1e-4), cp.rw,
            xattrs=cp.kernel_xattrs.get(f"{cp.mount_id}/diff", {}), work_work=True, leftover=cp.work_leftovers[1],
        ))
        lease.snapshots = [init_key, cp.id]
        init = self.by_key[init_key]
        rw = self.by_key[cp.id]
        lowers = [init.id] + [self.by_key[lp.db_id].id for lp in reversed(cp.image.layers)]
        self.containers.append(ContainerdContainerTruth(
            id=cp.id,
            name=cp.name,
            image=cp.image.recipe.name,
            snapshot=cp.id,
            init_snapshot=init_key,
            lease=cp.id,
            image_top=top.db_id,
            upperdir=f"{SNAPSHOTTER_DIR}/snapshots/{rw.id}/fs",
            lowerdirs=tuple(f"{SNAPSHOTTER_DIR}/snapshots/{n}/fs" for n in lowers),
        ))
        if cp.recipe.state == "exited":  # started: a task ran, then stopped and was deleted
            self.clock += timedelta(seconds=self.random.uniform(30, 1800))


def _names(ip: ImagePlan) -> tuple[str, str, list[str]]:
    """(registry host, repository path, image record names) of an image, e.g.
    ``("docker.io", "library/nginx", ["docker.io/library/nginx:latest", …])``."""
    names = []
    for tag in ip.recipe.all_tags:
        repo, _, version = tag.rpartition(":")
        names.append(f"{source_repository(repo)}:{version}")
    full = source_repository(ip.recipe.name.rpartition(":")[0])
    host, _, path = full.partition("/")
    return host.split(":")[0], path, names


def _image_layers(digests: list[str]) -> str:
    """``cri.image-layers``: this layer's digest and those above it, while the label fits."""
    out = ""
    for digest in digests:
        item = f",{digest}" if out else digest
        if len(LABEL_CRI_IMAGE_LAYERS) + len(out) + len(item) > _LABEL_MAX:
            break
        out += item
    return out


def _image_truth(ip: ImagePlan, names: list[str], target: tuple[str, str, int], pulled: bool) -> ContainerdImageTruth:
    return ContainerdImageTruth(
        name=ip.recipe.name,
        names=tuple(names),
        target_digest=target[0],
        target_media_type=target[1],
        target_size=target[2],
        config_digest=ip.image_id,
        layer_digests=tuple(lp.layer.compressed_digest for lp in ip.layers),
        chain_ids=tuple(lp.db_id for lp in ip.layers),
        pulled=pulled,
    )


def plan_containerd(plan: Plan) -> ContainerdPlan:
    """Replay ``plan``'s history on a Docker 29 host (pure: same plan, same result)."""
    host = _Host(plan)
    for ip in plan.images:
        (host.pull if ip.recipe.pulled else host.build)(ip)
    for cp in plan.containers:
        host.create_container(cp)
    host.snapshots.sort(key=lambda s: s.id)
    ran = any(cp.recipe.state == "exited" for cp in plan.containers)
    return ContainerdPlan(
        plan=plan,
        blobs=host.blobs,
        snapshots=host.snapshots,
        images=host.images,
        image_truths=host.image_truths,
        leases=host.leases,
        containers=host.containers,
        meta_sequence=host.meta_seq,
        snapshot_sequence=host.snap_seq,
        containers_bucket=ran,
        task_namespace=ran,
        introspection_uuid=host.uuid,
    )


# -- usage, as containerd's fs.DiskUsage measures an ext4 upper dir at commit ---------------------

_BLOCK = 4096


def _dir_bytes(names: list[str]) -> int:
    """Bytes an ext4 directory takes: its linear entries ("." and ".." included), whole blocks."""
    used = 24 + sum(8 + (len(n.encode()) + 3) // 4 * 4 for n in names)
    return max(1, -(-used // _BLOCK)) * _BLOCK


def disk_usage(layer: Layer) -> tuple[int, int]:
    """(inodes, bytes) of a layer unpacked into ``fs/``: what containerd records at commit.

    Every distinct inode counts once (``fs/`` itself included, hard links once); bytes are
    allocated blocks (``st_blocks * 512``): whole 4 KiB blocks for files and directories,
    none for empty files, devices (whiteouts) and symlinks short enough to live in the inode.
    """
    children: dict[str, list[str]] = {"": []}
    inodes = 1
    size = 0
    for e in layer.entries:
        if e.kind == "opaque":
            continue
        head, _, base = e.path.rpartition("/")
        children.setdefault(head, []).append(base)
        if e.kind == "hardlink":
            continue
        inodes += 1
        if e.kind == "dir":
            children.setdefault(e.path, [])
        elif e.kind == "file":
            size += -(-len(e.data) // _BLOCK) * _BLOCK
        elif e.kind == "symlink" and len(e.target.encode()) >= 60:
            size += _BLOCK
    size += sum(_dir_bytes(names) for names in children.values())
    return inodes, size


# -- the writer ----------------------------------------------------------------------------------


def write_containerd(cplan: ContainerdPlan, root: str | os.PathLike[str]) -> list[str]:
    """Write ``cplan`` into the directory ``root`` (created; its parent must exist).

    Returns notes on anything written in a degraded form (whiteouts, xattrs) because the file
    system refused what a root daemon does, exactly as the classic writer reports them.
    """
    umask = os.umask(0)
    try:
        return _write_all(cplan, os.fspath(root))
    finally:
        os.umask(umask)


def _write_all(cp: ContainerdPlan, top: str) -> list[str]:
    from . import bbolt

    w = _Writer()
    w.mkdir(top, 0o700)
    for name, mode in _ROOT_DIRS:
        w.mkdir(f"{top}/{name}", mode)
    if cp.task_namespace:
        w.mkdir(f"{top}/io.containerd.runtime.v2.task/{NAMESPACE}", 0o711)
    w.write(f"{top}/io.containerd.grpc.v1.introspection/uuid", cp.introspection_uuid.encode(), 0o644)
    blobs = f"{top}/{CONTENT_DIR}/blobs/sha256"
    for digest, blob in sorted(cp.blobs.items()):
        w.write(f"{blobs}/{digest.removeprefix('sha256:')}", blob.data, 0o444)
    snaps = f"{top}/{SNAPSHOTTER_DIR}/snapshots"
    for snap in cp.snapshots:
        d = f"{snaps}/{snap.id}"
        w.mkdir(d, 0o700)
        w.mkdir(f"{d}/fs", 0o755)
        w.unpack(f"{d}/fs", snap.layer)
        for rel, xattrs in snap.xattrs.items():
            for name, value in xattrs.items():
                w.kernel_xattr(f"{d}/fs/{rel}".rstrip("/"), name, value)
        w.mkdir(f"{d}/work", 0o711)
        if snap.work_work:
            w.mkdir(f"{d}/work/work", 0o000)
            if snap.leftover:
                w.whiteout(f"{d}/work/work/{snap.leftover}")
    bbolt.write(f"{top}/{META_DB}", meta_db(cp, bbolt), mode=0o644)
    bbolt.write(f"{top}/{SNAPSHOTTER_DB}", snapshotter_db(cp, bbolt), mode=0o600)
    w.finish()
    return w.notes()


def _labels(bbolt: Any, labels: dict[str, str]) -> dict[str, Any]:
    """A ``labels`` sub-bucket, absent when there are none (containerd's boltutil.WriteLabels)."""
    return {"labels": bbolt.Bucket(dict(labels))} if labels else {}


def meta_db(cp: ContainerdPlan, bbolt: Any) -> Any:
    """The root bucket of ``io.containerd.metadata.v1.bolt/meta.db``."""
    B = bbolt.Bucket
    blobs = {
        digest: B({"createdat": b.created, "updatedat": b.updated, "size": varint(len(b.data)), **_labels(bbolt, b.labels)})
        for digest, b in cp.blobs.items()
    }
    images = {
        img.name: B({
            "createdat": img.created,
            "updatedat": img.created,
            "target": B({"digest": img.target[0].encode(), "mediatype": img.target[1].encode(), "size": varint(img.target[2])}),
        })
        for img in cp.images
    }
    children: dict[str, list[str]] = {}
    for s in cp.snapshots:
        if s.parent is not None:
            children.setdefault(s.parent, []).append(s.key)
    snapshots = {}
    for s in cp.snapshots:
        item: dict[str, Any] = {"createdat": s.created, "updatedat": s.created, "name": f"{NAMESPACE}/{s.seq}/{s.key}".encode()}
        if s.parent is not None:
            item["parent"] = s.parent.encode()
        if s.key in children:
            item["children"] = B({k: b"" for k in children[s.key]})
        snapshots[s.key] = B({**item, **_labels(bbolt, s.labels)})
    leases = {
        lease.id: B({
            "createdat": lease.created,
            "snapshots": B({SNAPSHOTTER: B({k: b"" for k in lease.snapshots})}),
        })
        for lease in cp.leases
    }
    ns: dict[str, Any] = {
        "content": B({"blob": B(blobs), "ingests": B()}),
        "images": B(images),
        "leases": B(leases),
        "snapshots": B({SNAPSHOTTER: B(snapshots, sequence=cp.meta_sequence)}),
    }
    if cp.containers_bucket:
        ns["containers"] = B()
    return B({"v1": B({NAMESPACE: B(ns), "version": varint(DB_VERSION)})})


def _inherited(labels: dict[str, str]) -> dict[str, str]:
    """The labels the metadata store passes on to the snapshotter (snapshots.FilterInheritedLabels)."""
    return {k: v for k, v in labels.items() if k == LABEL_SNAPSHOT_REF or k.startswith("containerd.io/snapshot/")}


def snapshotter_db(cp: ContainerdPlan, bbolt: Any) -> Any:
    """The root bucket of ``io.containerd.snapshotter.v1.overlayfs/metadata.db``."""
    B = bbolt.Bucket
    by_key = {s.key: s for s in cp.snapshots}
    name = {s.key: f"{NAMESPACE}/{s.seq}/{s.key}" for s in cp.snapshots}
    snapshots = {}
    parents = {}
    for s in cp.snapshots:
        item: dict[str, Any] = {
            "createdat": s.sn_created,
            "updatedat": s.sn_created,
            "id": uvarint(s.id),
            "kind": bytes([3 if s.kind == "committed" else 2]),
        }
        usage = s.usage
        if usage is not None:
            item["inodes"] = varint(usage[0])
            item["size"] = varint(usage[1])
        if s.parent is not None:
            item["parent"] = name[s.parent].encode()
            parents[uvarint(by_key[s.parent].id) + b"\x00" + uvarint(s.id)] = name[s.key].encode()
        snapshots[name[s.key]] = B({**item, **_labels(bbolt, _inherited(s.labels))})
    return B({"v1": B({"parents": B(parents), "snapshots": B(snapshots, sequence=cp.snapshot_sequence)})})
