"""(b) Real containerd 1.6 and 2.x started on a containerd root WE built (``--store containerd``).

What ``ctr -n moby`` lists must be the builder's ground truth: image names and targets, every
content blob with its labels, every snapshot with its parent and kind. The garbage collector
must keep all of it (every reference in our meta.db is right). A snapshot prepared on an image's
top layer gets the next free id and, mounted, shows the image's files; ``ctr run`` runs a real
busybox from an image the builder wrote; bbolt's own check accepts both databases, before and
after containerd wrote to them.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import realcontainerd
from ctrstate import GO_TIME_RE, META_DB, NS, SEED, SNAP_DB, SNAP_DIR, catalogue, parse_table
from fakeroot_builder import bbolt
from fakeroot_builder.plan import Plan, make_plan
from fakeroot_builder.recipe import ImageRecipe, LayerContext, LayerRecipe, Step
from fakeroot_builder.truth import RootTruth

pytestmark = pytest.mark.conformance

KIND = {"committed": "Committed", "active": "Active", "view": "View"}


def write_store(plan: Plan, target: Path) -> RootTruth:
    try:
        from fakeroot_builder.build import write_store as write
    except ImportError:
        pytest.skip("the containerd store builder (fakeroot_builder.build.write_store) is not in this tree")
    return write(plan, target, "containerd")


def copy_root(src: Path, dst: Path) -> None:
    """A copy a daemon may change (``cp -a``: whiteout devices, xattrs, modes, hard links)."""
    subprocess.run(["cp", "-a", "--", str(src), str(dst)], check=True)


def ctr_rows(text: str) -> list[list[str]]:
    """Tab-separated ``ctr content ls`` rows without the header (the age column has spaces)."""
    return [[f for f in line.split("\t") if f] for line in text.splitlines()[1:] if line.strip()]


def labels_of(column: str) -> dict[str, str]:
    return {} if column == "-" else dict(item.split("=", 1) for item in column.split(","))


@dataclass
class Run:
    """What containerd ``version`` showed on a copy of our root, and what it left there."""

    version: str
    truth: RootTruth
    root: Path
    images: dict[str, tuple[str, str]] = field(default_factory=dict)
    content: dict[str, dict[str, str]] = field(default_factory=dict)
    snapshots: dict[str, tuple[str, str]] = field(default_factory=dict)
    after_gc: tuple[set[str], set[str]] = (set(), set())  # content digests, snapshot keys
    leases: set[str] = field(default_factory=set)
    container_mounts: dict[str, str] = field(default_factory=dict)  # container id -> mount command
    probes: list[Probe] = field(default_factory=list)  # one per catalogue image, in order


@dataclass
class Probe:
    """A snapshot prepared on an image's top layer: its key, mount command and visible files."""

    image: str
    key: str
    mounts: str
    files: set[str]

    def option(self, name: str) -> str:
        options = self.mounts.strip().split(" -o ", 1)[1].split(",")
        return next(o.split("=", 1)[1] for o in options if o.startswith(name + "="))


def snapshot_listing(c: realcontainerd.Containerd) -> dict[str, tuple[str, str]]:
    out = {}
    for parts in parse_table(c.ctr("snapshots", "--snapshotter", "overlayfs", "ls")):
        out[parts[0]] = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[1])
    return out


def mount_overlay(command: str, snapshots: Path) -> None:
    """Run the mount ``ctr snapshots mounts`` prints, with paths relative to ``snapshots``.

    A deep image's lowerdir list outgrows the kernel's one-page limit on mount options
    (``deep:latest``: 41 layers); containerd itself then mounts from inside the snapshots
    directory with relative paths, and so do we.
    """
    argv = shlex.split(command.strip())
    at = argv.index("-o")
    prefix = f"{snapshots}/"
    options = []
    for option in argv[at + 1].split(","):
        key, _, value = option.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            value = ":".join(v.removeprefix(prefix) for v in value.split(":"))
            option = f"{key}={value}"
        options.append(option)
    argv[at + 1] = ",".join(options)
    done = subprocess.run(argv, cwd=snapshots, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"mount failed ({done.returncode}): {done.stderr.strip()}\n{command[:300]}…")


def visible_files(mountpoint: Path) -> set[str]:
    """Every path below ``mountpoint`` (symlinks not followed)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(mountpoint):
        rel = os.path.relpath(dirpath, mountpoint)
        out.update(os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames)
    return out


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:  # ENODATA: not set
        return None


def overlay_view(layer_dirs: list[Path]) -> set[str]:
    """What overlayfs should show for ``layer_dirs`` (base first), by its rules: a 0/0 character
    device is a whiteout, ``trusted.overlay.opaque=y`` hides the layers below, a non-directory
    replaces a directory below with all it held."""
    view: dict[str, bool] = {}  # path -> is a directory

    def drop_below(path: str) -> None:
        for q in [q for q in view if q.startswith(path + "/")]:
            del view[q]

    for top in layer_dirs:
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, top)
            if rel != "." and _xattr(dirpath, "trusted.overlay.opaque") == b"y":
                drop_below(rel)
            for name in sorted(dirnames + filenames):
                path = os.path.normpath(os.path.join(rel, name))
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    view.pop(path, None)
                    drop_below(path)
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    drop_below(path)
                view[path] = stat.S_ISDIR(st.st_mode)
    return set(view)


@pytest.fixture(scope="session")
def our_plan() -> Plan:
    from fakeroot_builder.build import plan_root

    return plan_root(seed=SEED)


@pytest.fixture(scope="session")
def our_root(our_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RootTruth]:
    target = tmp_path_factory.mktemp("ours") / "containerd"
    return target, write_store(our_plan, target)


_RUNS: dict[str, Run] = {}


@pytest.fixture(scope="session")
def run(version: str, our_root: tuple[Path, RootTruth], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """containerd ``version`` on a copy of our root: listings, a forced GC, a probe snapshot."""
    if version in _RUNS:
        return _RUNS[version]
    src, truth = our_root
    base = tmp_path_factory.mktemp(f"ours-{version}")
    root = base / "root"
    copy_root(src, root)
    result = Run(version, truth, root)
    c = realcontainerd.Containerd(version, root=root)
    mnt = base / "mnt"
    mnt.mkdir()
    try:
        with c:
            for row in parse_table(c.ctr("images", "ls")):
                result.images[row[0]] = (row[1], row[2])
            for row in ctr_rows(c.ctr("content", "ls")):
                result.content[row[0]] = labels_of(row[-1])
            result.snapshots = snapshot_listing(c)
            # a garbage collection, synchronously: whatever our references miss is deleted now
            c.ctr("leases", "create", "--id", "conformance-gc")
            c.ctr("leases", "rm", "--sync", "conformance-gc")
            content = {row[0] for row in ctr_rows(c.ctr("content", "ls"))}
            result.after_gc = (content, set(snapshot_listing(c)))
            result.leases = {row[0] for row in parse_table(c.ctr("leases", "ls"))}
            for container in truth.containerd.containers:
                result.container_mounts[container.id] = c.ctr(
                    "snapshots", "--snapshotter", "overlayfs", "mounts", str(mnt), container.snapshot
                )
            for i, name in enumerate(catalogue()):
                key = f"conformance-probe-{i}"
                top = truth.image(name).layers[-1].db_id
                c.ctr("snapshots", "--snapshotter", "overlayfs", "prepare", key, top)
                mounts = c.ctr("snapshots", "--snapshotter", "overlayfs", "mounts", str(mnt), key)
                mount_overlay(mounts, c.root / SNAP_DIR)
                try:
                    files = visible_files(mnt)
                finally:
                    subprocess.run(["umount", str(mnt)], check=True)
                result.probes.append(Probe(name, key, mounts, files))
    finally:
        c.stop()
        c.cleanup()
    _RUNS[version] = result
    return result


# -- what ctr lists is our truth -------------------------------------------------------------------


def test_images_ls_lists_every_image_with_its_target(run: Run):
    ct = run.truth.containerd
    want = {name: (img.target_media_type, img.target_digest) for img in ct.images for name in img.names}
    assert run.images == want
    assert {img.name for img in ct.images} == set(catalogue())


def test_content_ls_lists_every_blob_with_its_labels(run: Run):
    want = {blob.digest: dict(blob.labels) for blob in run.truth.containerd.blobs}
    assert run.content == want


def test_snapshots_ls_lists_every_snapshot_with_its_parent_and_kind(run: Run):
    want = {s.key: (s.parent or "", KIND[s.kind]) for s in run.truth.containerd.snapshots}
    assert run.snapshots == want


def test_snapshot_keys_of_image_layers_are_their_chain_ids(run: Run):
    for image in run.truth.images:
        below = ""
        for layer in image.layers:
            assert run.snapshots[layer.db_id] == (below, "Committed"), image.name
            below = layer.db_id


def test_garbage_collection_keeps_everything(run: Run):
    content, snapshots = run.after_gc
    assert content == set(run.content), "containerd's GC deleted blobs our meta.db should keep"
    assert snapshots == set(run.snapshots), "containerd's GC deleted snapshots our meta.db should keep"


# -- a new snapshot on an image --------------------------------------------------------------------


def test_prepared_snapshots_get_the_next_free_ids_in_turn(run: Run):
    ct = run.truth.containerd
    snaps = bbolt.read(run.root / SNAP_DB).bucket("v1", "snapshots")
    meta = bbolt.read(run.root / META_DB).bucket("v1", NS, "snapshots", "overlayfs")
    for i, probe in enumerate(run.probes):
        want = ct.next_snapshot_id + i
        assert probe.option("upperdir") == f"{run.root}/io.containerd.snapshotter.v1.overlayfs/snapshots/{want}/fs"
        name = meta.bucket(probe.key)["name"]
        assert name == f"{NS}/{ct.meta_sequence + 1 + i}/{probe.key}".encode()
        assert snaps.bucket(name)["id"] == bbolt_uvarint(want)
    assert len(run.probes) == len(catalogue())


def deleted_paths(layers) -> set[str]:
    """Paths a layer deleted and no later layer brought back (the truth's paths are absolute)."""
    gone: set[str] = set()
    for layer in layers:
        gone |= {p.strip("/") for p in layer.changes.deleted}
        gone -= {p.strip("/") for p in (*layer.changes.added, *layer.changes.changed)}
    return gone


def test_prepared_snapshots_mount_with_the_image_files_visible(run: Run):
    ct = run.truth.containerd
    for probe in run.probes:
        image = run.truth.image(probe.image)
        lowers = [f"{run.root}/{ct.snapshot(layer.db_id).fs_dir}" for layer in reversed(image.layers)]
        assert probe.option("lowerdir") == ":".join(lowers), probe.image
        want = overlay_view([run.root / ct.snapshot(layer.db_id).fs_dir for layer in image.layers])
        assert probe.files == want, (probe.image, sorted(probe.files ^ want)[:10])
        top = {p.strip("/") for p in (*image.layers[-1].changes.added, *image.layers[-1].changes.changed)}
        assert top <= probe.files, (probe.image, sorted(top - probe.files)[:10])
        gone = deleted_paths(image.layers)
        assert not gone & probe.files, (probe.image, sorted(gone & probe.files)[:10])


def test_a_containers_snapshot_mounts_on_its_init_layer_and_image(run: Run):
    assert run.container_mounts, "the root has no containers"
    for container in run.truth.containerd.containers:
        mounts = run.container_mounts[container.id]
        probe = Probe(container.image, container.snapshot, mounts, set())
        assert probe.option("upperdir") == f"{run.root}/{container.upperdir}"
        assert probe.option("lowerdir") == ":".join(f"{run.root}/{d}" for d in container.lowerdirs)


def test_leases_ls_lists_every_lease(run: Run):
    assert run.leases == {lease.id for lease in run.truth.containerd.leases}


def bbolt_uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# -- bbolt's own check of our databases ------------------------------------------------------------


@pytest.fixture(scope="session")
def go_check():
    import boltcheck

    reason = boltcheck.unavailable()
    if reason:
        if boltcheck.on_ci():
            pytest.fail(f"CI is set but bbolt's check cannot be built: {reason}")
        pytest.skip(reason)
    return boltcheck.build()


@pytest.mark.parametrize("db", [META_DB, SNAP_DB], ids=["meta.db", "metadata.db"])
def test_bbolt_accepts_our_databases_before_and_after_containerd_wrote(go_check, our_root, run: Run, db: str):
    import boltcheck

    src, _ = our_root
    before = go_check.run(src / db)
    assert before.summary["check"] == "ok" and before.summary["freepages"] == 0
    assert before.items == boltcheck.flatten(bbolt.read(src / db))
    after = go_check.run(run.root / db)
    assert after.summary["check"] == "ok"
    assert after.summary["txid"] > before.summary["txid"]  # containerd did write


# -- ctr run of a real binary from an image we wrote -----------------------------------------------

BUSYBOX = Path("/bin/busybox")


def _realbox_base(ctx: LayerContext) -> None:
    ctx.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    ctx.dir("etc")
    ctx.file("etc/greeting", "hello from the base layer\n")
    ctx.file("etc/doomed", "deleted by the layer above\n")
    ctx.dir("tmp", 0o1777)


def _realbox_top(ctx: LayerContext) -> None:
    ctx.file("etc/greeting", "hello from the top layer\n")
    ctx.delete("etc/doomed")


REALBOX = ImageRecipe(
    name="realbox:latest",
    steps=(
        Step("/bin/sh -c #(nop) ADD file:realbox in / ", LayerRecipe("realbox-base", _realbox_base)),
        Step("/bin/sh -c #(nop) COPY file:greeting in /etc/ ", LayerRecipe("realbox-top", _realbox_top)),
    ),
    config={"Env": ["PATH=/bin"], "Cmd": ["/bin/busybox", "sh"]},
)


@pytest.fixture(scope="session")
def realbox_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RootTruth]:
    head = BUSYBOX.read_bytes()[:4096] if BUSYBOX.exists() else b""
    if not head.startswith(b"\x7fELF") or b"ld-linux" in head:  # an interpreter: not static
        reason = "needs a static /bin/busybox (apt-get install busybox-static)"
        if realcontainerd.on_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    plan = make_plan([REALBOX], [], seed=SEED, with_containers=False)
    target = tmp_path_factory.mktemp("realbox") / "containerd"
    return target, write_store(plan, target)


def test_ctr_run_runs_a_real_binary_from_an_image_we_wrote(version: str, realbox_root, tmp_path: Path):
    src, truth = realbox_root
    root = tmp_path / "root"
    copy_root(src, root)
    c = realcontainerd.Containerd(version, root=root)
    try:
        with c:
            name = truth.containerd.image("realbox:latest").names[0]
            out = c.ctr(
                "run", "--rm", name, f"realbox-{version.replace('.', '')}",
                "/bin/busybox", "sh", "-c", "cat /etc/greeting; test -e /etc/doomed && echo doomed-visible; echo ok",
                timeout=120,
            )
    finally:
        c.stop()
        c.cleanup()
    assert out.split() == ["hello", "from", "the", "top", "layer", "ok"], out


# -- our root next to what a real import wrote (values containerd draws: by shape only) -------------


def record_shapes(bucket: bbolt.Bucket) -> set[tuple[str, ...]]:
    """The field names of each record in ``bucket`` (nested buckets as ``name/``), labels aside."""
    shapes = set()
    for key in bucket:
        rec = bucket[key]
        fields = tuple(sorted(k.decode() + ("/" if isinstance(rec[k], bbolt.Bucket) else "") for k in rec))
        shapes.add(tuple(f for f in fields if f not in ("labels/", "annotations/", "children/")))
    return shapes


def test_our_records_have_the_shape_of_a_real_imports(imported, our_root):
    """Field names of every record in both databases match what containerd itself wrote."""
    src, _ = our_root
    ours, real = bbolt.read(src / META_DB), imported.meta
    if imported.version == "2":
        assert ours.bucket("v1")["version"] == real.bucket("v1")["version"] == b"\x08"
    for path in (("content", "blob"), ("snapshots", "overlayfs"), ("images",)):
        mine = record_shapes(ours.bucket("v1", NS, *path))
        theirs = record_shapes(real.bucket("v1", NS, *path))
        assert theirs <= mine, f"v1/{NS}/{'/'.join(path)}: containerd writes {theirs - mine}, we never do"
    for name in ours.bucket("v1", NS, "images"):
        target = ours.bucket("v1", NS, "images", name, "target")
        assert set(target) == {b"digest", b"mediatype", b"size"}
    mine = record_shapes(bbolt.read(src / SNAP_DB).bucket("v1", "snapshots"))
    theirs = record_shapes(imported.snap_db.bucket("v1", "snapshots"))
    assert theirs <= mine, f"metadata.db v1/snapshots: containerd writes {theirs - mine}, we never do"


def test_the_same_blobs_and_snapshot_chains_as_a_real_import(imported, our_root):
    """Our root next to what containerd made of our ``dockerlab export`` archives: the config
    blobs are byte-identical, each gzip layer blob is labelled with the DiffID containerd stored
    the layer under, and the real snapshots (keys and parents) are ours."""
    src, truth = our_root
    ct = truth.containerd
    for image in truth.images:
        ours = (src / ct.blob(image.image_id).path).read_bytes()
        assert imported.blobs[image.image_id] == ours, f"{image.name}: config {image.image_id}"
        for layer in image.layers:
            assert ct.blob(layer.compressed_digest).labels["containerd.io/uncompressed"] == layer.layer_id
            assert layer.layer_id in imported.content
    ours_snaps = {s.key: (s.parent or "", KIND[s.kind]) for s in ct.snapshots}
    for key, (parent, kind) in imported.snapshots.items():
        assert ours_snaps.get(key) == (parent, kind), key


def zigzag(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return (value >> 1) ^ -(value & 1)


def test_our_record_values_are_encoded_as_containerd_encodes_them(imported, our_root):
    """Sizes zigzag varints (= the blob's bytes), times Go's MarshalBinary, as in a real import."""
    src, truth = our_root
    for meta, root in ((bbolt.read(src / META_DB), src), (imported.meta, None)):
        blobs = meta.bucket("v1", NS, "content", "blob")
        for digest in blobs:
            rec = blobs.bucket(digest)
            assert GO_TIME_RE.match(rec["createdat"]) and GO_TIME_RE.match(rec["updatedat"]), digest
            if root is not None:
                assert zigzag(rec["size"]) == (root / truth.containerd.blob(digest.decode()).path).stat().st_size
        for name in meta.bucket("v1", NS, "images"):
            rec = meta.bucket("v1", NS, "images", name)
            assert GO_TIME_RE.match(rec["createdat"]) and GO_TIME_RE.match(rec["updatedat"]), name
            assert zigzag(rec.bucket("target")["size"]) > 0
