"""(b) Real containerd 1.6 and 2.x started on a containerd root WE built (``--store containerd``).

What ``ctr -n moby`` lists must be the builder's ground truth: image names and targets, every
content blob with its labels, every snapshot with its parent and kind. The garbage collector
must keep all of it (every reference in our meta.db is right). A snapshot prepared on an image's
top layer gets the next free id and, mounted, shows the image's files; ``ctr run`` runs a real
busybox from an image the builder wrote; bbolt's own check accepts both databases, before and
after containerd wrote to them.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import realcontainerd
from ctrstate import META_DB, NS, SEED, SNAP_DB, catalogue, parse_table
from fakeroot_builder import bbolt
from fakeroot_builder.plan import Plan, make_plan
from fakeroot_builder.recipe import ImageRecipe, LayerContext, LayerRecipe, Step
from fakeroot_builder.truth import RootTruth

pytestmark = pytest.mark.conformance

PROBE_IMAGE = "nginx:latest"
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
    probe_mounts: str = ""
    probe_files: set[str] = field(default_factory=set)


def snapshot_listing(c: realcontainerd.Containerd) -> dict[str, tuple[str, str]]:
    out = {}
    for parts in parse_table(c.ctr("snapshots", "--snapshotter", "overlayfs", "ls")):
        out[parts[0]] = (parts[1], parts[2]) if len(parts) == 3 else ("", parts[1])
    return out


def visible_files(mountpoint: Path) -> set[str]:
    return {str(p.relative_to(mountpoint)) for p in mountpoint.rglob("*")}


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
            top = truth.image(PROBE_IMAGE).layers[-1].db_id
            c.ctr("snapshots", "--snapshotter", "overlayfs", "prepare", "conformance-probe", top)
            result.probe_mounts = c.ctr("snapshots", "--snapshotter", "overlayfs", "mounts", str(mnt), "conformance-probe")
            argv = shlex.split(result.probe_mounts.strip())
            subprocess.run(argv, check=True, capture_output=True, text=True)
            try:
                result.probe_files = visible_files(mnt)
            finally:
                subprocess.run(["umount", str(mnt)], check=True)
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


def test_a_prepared_snapshot_gets_the_next_free_id(run: Run):
    ct = run.truth.containerd
    want = f"{ct.snapshot(run.truth.image(PROBE_IMAGE).layers[-1].db_id).dir}"
    upper = next(o for o in run.probe_mounts.split("-o ", 1)[1].split(",") if o.startswith("upperdir="))
    assert upper == f"upperdir={run.root}/io.containerd.snapshotter.v1.overlayfs/snapshots/{ct.next_snapshot_id}/fs"
    snaps = bbolt.read(run.root / SNAP_DB).bucket("v1", "snapshots")
    meta = bbolt.read(run.root / META_DB).bucket("v1", NS, "snapshots", "overlayfs")
    name = meta.bucket("conformance-probe")["name"]
    assert name == f"{NS}/{ct.meta_sequence + 1}/conformance-probe".encode()
    assert snaps.bucket(name)["id"] == bbolt_uvarint(ct.next_snapshot_id)
    assert want  # the image's top snapshot exists in the truth


def test_the_prepared_snapshot_mounts_with_the_image_files_visible(run: Run):
    image = run.truth.image(PROBE_IMAGE)
    lowers = [f"{run.root}/{run.truth.containerd.snapshot(layer.db_id).fs_dir}" for layer in reversed(image.layers)]
    assert f"lowerdir={':'.join(lowers)}" in run.probe_mounts
    present: set[str] = set()
    gone: set[str] = set()
    for layer in image.layers:  # the truth's paths are absolute ("/etc/passwd")
        ch = layer.changes
        for d in (d.strip("/") for d in ch.opaque):
            present = {p for p in present if not p.startswith(d + "/")}
        for p in (p.strip("/") for p in ch.deleted):
            present = {q for q in present if q != p and not q.startswith(p + "/")}
            gone.add(p)
        for p in (p.strip("/") for p in (*ch.added, *ch.changed)):
            present.add(p)
            gone.discard(p)
    assert present, "the truth lists no files"
    assert present <= run.probe_files, sorted(present - run.probe_files)[:10]
    assert not gone & run.probe_files, sorted(gone & run.probe_files)[:10]


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
