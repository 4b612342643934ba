"""``dockerlab build --store containerd`` writes what containerd 2.x leaves for Docker 29.

Expected values come from the rules (hashlib, json, the ChainID formula), from the real listings
and database dumps in ``/work/shared/reference/containerd/`` (copied into the tests as numbers),
or from the classic store built from the same plan, never from the containerd writer itself.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fakeroot_builder import bbolt, formats
from fakeroot_builder.build import DegradedRootWarning, build_root, plan_root
from fakeroot_builder.cache import cached_root
from fakeroot_builder.errors import LiveDockerRootError, TargetNotEmptyError
from fakeroot_builder.layer import Entry, Layer
from fakeroot_builder.plan import CANONICAL_SEED
from fakeroot_builder.safety import check_target, looks_built

CONTENT = "io.containerd.content.v1.content"
SNAPSHOTS = "io.containerd.snapshotter.v1.overlayfs/snapshots"
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
SN_DB = "io.containerd.snapshotter.v1.overlayfs/metadata.db"

#: Top-level layout and modes of a containerd 2.1 root after `ctr run` (reference v2-find-1-after-import-run.txt).
REFERENCE_MODES = {
    ".": 0o700,
    CONTENT: 0o755,
    f"{CONTENT}/blobs": 0o755,
    f"{CONTENT}/blobs/sha256": 0o755,
    f"{CONTENT}/ingest": 0o755,
    "io.containerd.grpc.v1.introspection": 0o700,
    "io.containerd.grpc.v1.introspection/uuid": 0o644,
    "io.containerd.metadata.v1.bolt": 0o711,
    META_DB: 0o644,
    "io.containerd.runtime.v2.task": 0o711,
    "io.containerd.runtime.v2.task/moby": 0o711,
    "io.containerd.sandbox.controller.v1.shim": 0o700,
    "io.containerd.snapshotter.v1.native": 0o700,
    "io.containerd.snapshotter.v1.native/snapshots": 0o700,
    "io.containerd.snapshotter.v1.overlayfs": 0o700,
    SN_DB: 0o600,
    SNAPSHOTS: 0o700,
    "tmpmounts": 0o700,
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain(diff_ids: list[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256(f"{out[-1]} {d}".encode()))
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def uvarint(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


def varint(data: bytes) -> int:
    u = uvarint(data)
    return (u >> 1) ^ -(u & 1)


@pytest.fixture(scope="module")
def built():
    return cached_root(seed=CANONICAL_SEED, store="containerd")


@pytest.fixture(scope="module")
def root(built) -> Path:
    return built.path


@pytest.fixture(scope="module")
def truth(built):
    return built.truth


@pytest.fixture(scope="module")
def meta(root):
    return bbolt.read(root / META_DB)


@pytest.fixture(scope="module")
def sndb(root):
    return bbolt.read(root / SN_DB)


@pytest.fixture(scope="module")
def classic():
    return cached_root(seed=CANONICAL_SEED)


def moby(meta):
    return meta.bucket("v1", "moby")


# -- encodings, checked against values in the reference dumps -------------------------------------


def test_sizes_are_zigzag_varints_as_in_the_reference_dump():
    from fakeroot_builder.containerd_store import uvarint as put_uvarint, varint as put_varint

    # meta-db-walk-go.txt: blobs of 248, 1027918 and 713 bytes
    assert put_varint(248) == bytes.fromhex("f003")
    assert put_varint(1027918) == b"\x9c\xbd}"
    assert put_varint(713) == bytes.fromhex("920b")
    assert put_varint(4) == b"\x08" and put_varint(3) == b"\x06"  # v1/version of 2.x and 1.6
    assert put_uvarint(1) == b"\x01" and put_uvarint(300) == bytes([0xAC, 0x02])


def test_times_are_go_marshal_binary_utc():
    from fakeroot_builder.containerd_store import go_time_binary

    ref = bytes.fromhex("010000000ee2a0c055184a661affff")  # a createdat of the reference (recorded 2026-12-01)
    seconds = int.from_bytes(ref[1:9], "big")
    nanos = int.from_bytes(ref[9:13], "big")
    moment = datetime.fromtimestamp(seconds - 62135596800, tz=timezone.utc)
    assert moment.year == 2026 and moment.month == 12
    assert go_time_binary(moment, nanos) == ref


def test_disk_usage_matches_what_containerd_recorded_for_the_reference_layers():
    """overlayfs-metadata-db-walk-go.txt: inodes and size of snapshots 1, 2 and 3 of the lab image."""
    from fakeroot_builder.containerd_store import disk_usage

    busybox = Layer((
        Entry("bin", "dir", 0o755), Entry("bin/busybox", "file", 0o755, data=b"\0" * 1982256),
        *(Entry(f"bin/{n}", "symlink", 0o777, target="busybox") for n in ("cat", "ls", "sh", "true")),
        Entry("etc", "dir", 0o755), Entry("tmp", "dir", 0o1777),
    ))
    assert disk_usage(busybox) == (9, 1998848)  # inodes 0x12, size 0x8080f401 (zigzag)
    files = Layer((
        Entry("etc", "dir", 0o755), Entry("etc/motd", data=b"x" * 19), Entry("etc/remove-me", data=b"y" * 19),
        Entry("usr", "dir", 0o755), Entry("usr/share", "dir", 0o755), Entry("usr/share/lab", "dir", 0o755),
        Entry("usr/share/lab/old.txt", data=b"z" * 32),
    ))
    assert disk_usage(files) == (8, 32768)  # inodes 0x10, size 0x808004
    whiteout = Layer((
        Entry("etc", "dir", 0o755), Entry("etc/motd", data=b"x" * 19), Entry("etc/remove-me", "whiteout"),
        Entry("usr", "dir", 0o755), Entry("usr/share", "dir", 0o755), Entry("usr/share/lab", "dir", 0o755),
        Entry("usr/share/lab/new.txt", data=b"n" * 8),
    ))
    assert disk_usage(whiteout) == (8, 28672)  # inodes 0x10, size 0x80c003


# -- layout and modes ----------------------------------------------------------------------------


def test_top_level_layout_and_modes_are_containerd_2s(root):
    for rel, expected in REFERENCE_MODES.items():
        assert mode(root / rel) == expected, rel
    top = {p.name for p in root.iterdir()}
    assert top == {rel for rel in REFERENCE_MODES if "/" not in rel and rel != "."}


def test_blobs_are_0444_and_named_by_their_sha256(root):
    blobs = list((root / CONTENT / "blobs" / "sha256").iterdir())
    assert len(blobs) > 60
    for blob in blobs:
        assert mode(blob) == 0o444, blob
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    assert not list((root / CONTENT / "ingest").iterdir())


def test_snapshot_dirs_are_0700_with_fs_0755_and_work_0711(root, truth):
    ids = sorted(int(p.name) for p in (root / SNAPSHOTS).iterdir())
    assert ids == [s.id for s in truth.containerd.snapshots]
    for n in ids:
        d = root / SNAPSHOTS / str(n)
        assert (mode(d), mode(d / "fs"), mode(d / "work")) == (0o700, 0o755, 0o711), d
        assert {p.name for p in d.iterdir()} == {"fs", "work"}


def test_only_mounted_snapshots_keep_work_work_0000(root, truth):
    ct = truth.containerd
    mounted = {ct.snapshot(c.snapshot).id for c in ct.containers} | {ct.snapshot(c.init_snapshot).id for c in ct.containers}
    for s in ct.snapshots:
        work = root / SNAPSHOTS / str(s.id) / "work"
        if s.id in mounted:
            assert mode(work / "work") == 0o000
        else:
            assert not list(work.iterdir()), s.key


def test_meta_db_is_db_version_4_with_the_buckets_containerd_2_writes(meta):
    assert set(meta.items) == {b"v1"}
    v1 = meta.bucket("v1")
    assert v1[b"version"] == b"\x08"
    assert set(v1.items) == {b"moby", b"version"}
    assert set(moby(meta).items) == {b"containers", b"content", b"images", b"leases", b"snapshots"}
    assert set(moby(meta).bucket("content").items) == {b"blob", b"ingests"}
    assert len(moby(meta).bucket("containers").items) == 0  # Docker deletes a container's record when it stops


# -- content: the classic store's bytes, with containerd's labels ----------------------------------


def test_manifests_configs_and_layers_are_byte_identical_to_the_classic_store(root, truth, classic):
    ct = truth.containerd
    blobs = root / CONTENT / "blobs" / "sha256"
    plan = plan_root(seed=CANONICAL_SEED)
    for ip in plan.images:
        image = ct.image(ip.recipe.name)
        assert image.config_digest == truth.image(ip.recipe.name).image_id == classic.truth.image(ip.recipe.name).image_id
        assert (blobs / ip.image_id[7:]).read_bytes() == ip.config_bytes
        for lp in ip.layers:
            assert (blobs / lp.layer.compressed_digest[7:]).read_bytes() == lp.layer.blob
        if ip.manifest_bytes is not None:
            assert image.target_digest == sha256(ip.manifest_bytes) == ip.manifest_digest
            assert (blobs / image.target_digest[7:]).read_bytes() == ip.manifest_bytes


def test_every_blob_has_a_record_with_its_size_and_the_truths_labels(root, meta, truth):
    records = moby(meta).bucket("content", "blob")
    on_disk = {"sha256:" + p.name: p for p in (root / CONTENT / "blobs" / "sha256").iterdir()}
    assert {k.decode() for k in records.items} == set(on_disk) == {b.digest for b in truth.containerd.blobs}
    for blob in truth.containerd.blobs:
        rec = records.bucket(blob.digest)
        assert varint(rec[b"size"]) == on_disk[blob.digest].stat().st_size == blob.size
        assert len(rec[b"createdat"]) == 15 and len(rec[b"updatedat"]) == 15
        labels = {k.decode(): v.decode() for k, v in rec.bucket("labels").items.items()} if b"labels" in rec else {}
        assert labels == blob.labels


def test_layer_blobs_carry_their_diff_id_as_containerd_io_uncompressed(root, meta, truth):
    records = moby(meta).bucket("content", "blob")
    for layer in truth.layers().values():
        labels = records.bucket(layer.compressed_digest, "labels")
        assert labels[b"containerd.io/uncompressed"].decode() == layer.layer_id
        # the DiffID is the sha256 of the gunzipped blob
        import gzip

        data = (root / CONTENT / "blobs" / "sha256" / layer.compressed_digest[7:]).read_bytes()
        assert sha256(gzip.decompress(data)) == layer.layer_id


def test_manifests_reference_config_and_layers_and_configs_the_top_snapshot(root, meta, truth):
    records = moby(meta).bucket("content", "blob")
    blobs = root / CONTENT / "blobs" / "sha256"
    for image in truth.containerd.images:
        manifest = json.loads((blobs / image.target_digest[7:]).read_bytes())
        labels = {k.decode(): v.decode() for k, v in records.bucket(image.target_digest, "labels").items.items()}
        layers = [d["digest"] for d in manifest["layers"]]
        if image.pulled:
            assert labels["containerd.io/gc.ref.content.config"] == manifest["config"]["digest"]
            assert [labels[f"containerd.io/gc.ref.content.l.{i}"] for i in range(len(layers))] == layers
            assert labels["containerd.io/distribution.source.docker.io"].startswith("library/")
        else:  # moby's classic builder on the containerd store (writeContentsForImage)
            assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
            assert labels["containerd.io/gc.ref.content.0"] == manifest["config"]["digest"]
            assert [labels[f"containerd.io/gc.ref.content.{i + 1}"] for i in range(len(layers))] == layers
        config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
        top = chain(config["rootfs"]["diff_ids"])[-1]
        assert records.bucket(manifest["config"]["digest"], "labels")[b"containerd.io/gc.ref.snapshot.overlayfs"].decode() == top


def test_image_records_point_at_their_manifest(meta, truth):
    records = moby(meta).bucket("images")
    names = {n for i in truth.containerd.images for n in i.names}
    assert {k.decode() for k in records.items} == names
    assert "docker.io/library/nginx:latest" in names and "docker.io/library/nginx:1.25" in names
    for image in truth.containerd.images:
        for name in image.names:
            target = records.bucket(name, "target")
            assert target[b"digest"].decode() == image.target_digest
            assert target[b"mediatype"].decode() == image.target_media_type
            assert varint(target[b"size"]) == image.target_size


# -- snapshots -----------------------------------------------------------------------------------


def test_image_snapshot_keys_are_the_chain_ids_of_the_configs_diff_ids(root, meta, truth):
    keys = {k.decode() for k in moby(meta).bucket("snapshots", "overlayfs").items}
    blobs = root / CONTENT / "blobs" / "sha256"
    for image in truth.containerd.images:
        manifest = json.loads((blobs / image.target_digest[7:]).read_bytes())
        config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
        ids = chain(config["rootfs"]["diff_ids"])
        assert list(image.chain_ids) == ids == list(truth.image(image.name).db_ids)
        assert set(ids) <= keys
        assert [s.key for s in truth.containerd.image_snapshots(image.name)] == ids


def test_meta_db_and_metadata_db_agree_on_names_parents_and_ids(meta, sndb, truth):
    msnaps = moby(meta).bucket("snapshots", "overlayfs")
    ssnaps = sndb.bucket("v1", "snapshots")
    assert len(msnaps.items) == len(ssnaps.items) == len(truth.containerd.snapshots)
    seqs, ids = set(), set()
    for key, rec in msnaps.items.items():
        name = rec[b"name"].decode()
        ns, seq, rest = name.split("/", 2)
        assert (ns, rest) == ("moby", key.decode())
        seqs.add(int(seq))
        srec = ssnaps.bucket(name)
        sid = uvarint(srec[b"id"])
        ids.add(sid)
        truth_snap = truth.containerd.snapshot(key.decode())
        assert (truth_snap.name, truth_snap.id) == (name, sid)
        kind = srec[b"kind"]
        assert kind == (b"\x03" if truth_snap.kind == "committed" else b"\x02")
        if b"parent" in rec:
            parent = msnaps.bucket(rec[b"parent"])
            assert srec[b"parent"] == parent[b"name"]
            assert key in parent.bucket("children").items
        else:
            assert b"parent" not in srec
        assert (b"inodes" in srec) == (b"size" in srec) == (kind == b"\x03")
    assert len(seqs) == len(ids) == len(msnaps.items)


def test_bucket_sequences_are_the_last_numbers_handed_out(meta, sndb, truth):
    msnaps = moby(meta).bucket("snapshots", "overlayfs")
    ssnaps = sndb.bucket("v1", "snapshots")
    top_seq = max(int(r[b"name"].split(b"/")[1]) for r in msnaps.items.values())
    top_id = max(uvarint(r[b"id"]) for r in ssnaps.items.values())
    assert msnaps.sequence == truth.containerd.meta_sequence >= top_seq
    assert ssnaps.sequence == truth.containerd.snapshot_sequence >= top_id
    # the last thing done was creating a container: its active snapshot holds both last numbers
    last = truth.containerd.snapshot(truth.containerd.containers[-1].snapshot)
    assert (last.id, int(last.name.split("/")[1])) == (ssnaps.sequence, msnaps.sequence)
    assert truth.containerd.next_snapshot_id == top_id + 1


def test_unpacking_takes_two_names_per_layer_and_keeps_the_extract_id():
    """extract-<n> <ChainID> takes seq 2k-1 and id k, its commit seq 2k (reference: moby/2, /4, /6 for ids 1, 2, 3)."""
    ct = cached_root(seed=CANONICAL_SEED, images=["nginx:latest"], containers=False, store="containerd").truth.containerd
    assert [(s.id, s.name.split("/")[1]) for s in ct.snapshots] == [(k, str(2 * k)) for k in range(1, 8)]
    assert (ct.snapshot_sequence, ct.meta_sequence) == (7, 14)


def test_parents_bucket_links_parent_id_to_child_id(sndb, truth):
    """Keys are uvarint(parent id) 00 uvarint(child id), values the child's name (0x010002 = 1 → 2)."""
    parents = sndb.bucket("v1", "parents").items
    expected = {}
    for s in truth.containerd.snapshots:
        if s.parent is not None:
            pid = truth.containerd.snapshot(s.parent).id
            expected[(pid, s.id)] = s.name.encode()
    decoded = {}
    for key, value in parents.items():
        head, _, tail = key.partition(b"\x00")
        decoded[(uvarint(head), uvarint(tail))] = value
    assert decoded == expected
    assert any(pid >= 128 or cid >= 128 for pid, cid in decoded)  # multi-byte uvarints occur


def test_pulled_layers_carry_snapshot_ref_and_moby_pull_labels(meta, sndb, truth):
    msnaps = moby(meta).bucket("snapshots", "overlayfs")
    nginx = truth.image("nginx:latest")
    top = nginx.layers[-1]
    labels = {k.decode(): v.decode() for k, v in msnaps.bucket(top.db_id, "labels").items.items()}
    assert labels["containerd.io/snapshot.ref"] == top.db_id
    assert labels["containerd.io/snapshot/cri.layer-digest"] == top.compressed_digest
    assert labels["containerd.io/snapshot/cri.image-ref"] == "docker.io/library/nginx:latest"
    assert labels["containerd.io/snapshot/cri.manifest-digest"] == nginx.manifest_digest
    name = msnaps.bucket(top.db_id)[b"name"]
    inherited = sndb.bucket("v1", "snapshots", name, "labels").items
    assert {k.decode(): v.decode() for k, v in inherited.items()} == labels


def test_snapshot_fs_holds_the_layer_with_whiteouts_and_opaque_dirs(root, truth):
    ct = truth.containerd
    seen_whiteout = seen_opaque = False
    for layer in truth.layers().values():
        fs = root / ct.snapshot(layer.db_id).fs_dir
        for path in layer.changes.added + layer.changes.changed:
            assert os.path.lexists(fs / path.lstrip("/")), (layer.db_id, path)
        for path in layer.changes.deleted:
            assert formats.is_whiteout(fs / path.lstrip("/")), path
            seen_whiteout = True
        for path in layer.changes.opaque:
            assert formats.is_opaque(fs / path.lstrip("/")), path
            seen_opaque = True
    assert seen_whiteout and seen_opaque


def test_classic_diff_dirs_and_containerd_fs_dirs_hold_the_same_files(root, truth, classic):
    for layer in truth.layers().values():
        a = classic.path / layer.diff_dir
        b = root / truth.containerd.snapshot(layer.db_id).fs_dir
        list_a = sorted((os.path.relpath(os.path.join(d, n), a) for d, ds, fs in os.walk(a) for n in ds + fs))
        list_b = sorted((os.path.relpath(os.path.join(d, n), b) for d, ds, fs in os.walk(b) for n in ds + fs))
        assert list_a == list_b, layer.db_id


# -- containers ----------------------------------------------------------------------------------


def test_a_container_is_an_active_snapshot_on_its_committed_init_held_by_its_lease(meta, truth):
    msnaps = moby(meta).bucket("snapshots", "overlayfs")
    leases = moby(meta).bucket("leases")
    assert len(truth.containerd.containers) == len(truth.containers) >= 4
    for c, classic_c in zip(truth.containerd.containers, truth.containers):
        assert c.id == classic_c.id and c.name == classic_c.name
        active = msnaps.bucket(c.id)
        init = msnaps.bucket(f"{c.id}-init")
        assert active[b"parent"].decode() == f"{c.id}-init"
        assert init[b"parent"].decode() == classic_c.parent == c.image_top
        assert truth.containerd.snapshot(c.id).kind == "active"
        assert truth.containerd.snapshot(f"{c.id}-init").kind == "committed"
        held = leases.bucket(c.id, "snapshots", "overlayfs").items
        assert set(held) == {c.id.encode(), f"{c.id}-init".encode()}
        assert len(leases.bucket(c.id)[b"createdat"]) == 15


def test_a_containers_lowerdirs_are_its_init_then_the_image_layers_nearest_first(root, truth):
    ct = truth.containerd
    for c in ct.containers:
        image = truth.image(c.image)
        expected = [ct.snapshot(f"{c.id}-init").fs_dir] + [ct.snapshot(x.db_id).fs_dir for x in reversed(image.layers)]
        assert list(c.lowerdirs) == expected
        assert c.upperdir == ct.snapshot(c.id).fs_dir
        for d in (c.upperdir, *c.lowerdirs):
            assert (root / d).is_dir()


def test_container_fs_dirs_hold_the_init_files_and_the_containers_changes(root, truth):
    ct = truth.containerd
    for c, classic_c in zip(ct.containers, truth.containers):
        init = root / ct.snapshot(c.init_snapshot).fs_dir
        assert (init / ".dockerenv").is_file() and (init / "etc" / "hosts").is_file()
        upper = root / c.upperdir
        for path in classic_c.changes.added + classic_c.changes.changed:
            assert os.path.lexists(upper / path.lstrip("/")), path
        for path in classic_c.changes.deleted:
            assert formats.is_whiteout(upper / path.lstrip("/")), path


# -- truth, determinism, seeds -------------------------------------------------------------------


def test_truth_round_trips_through_json(truth):
    from fakeroot_builder.truth import RootTruth

    again = RootTruth.from_json(truth.to_json())
    assert again == truth and again.store == "containerd"
    data = json.loads(truth.to_json())
    assert data["containerd"]["snapshots"][0]["fs_dir"].endswith("/fs")


def test_same_seed_builds_byte_identical_databases(tmp_path):
    a = build_root(tmp_path / "a", seed=7, images=["nginx:latest", "alpine:3.19"], store="containerd")
    b = build_root(tmp_path / "b", seed=7, images=["nginx:latest", "alpine:3.19"], store="containerd")
    assert a == b
    for rel in (META_DB, SN_DB, "io.containerd.grpc.v1.introspection/uuid"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    walk = lambda r: sorted(str(p.relative_to(r)) for p in r.rglob("*"))  # noqa: E731
    assert walk(tmp_path / "a") == walk(tmp_path / "b")


def test_another_host_seed_keeps_keys_and_digests_but_not_ids_or_times(truth):
    other = cached_root(seed=CANONICAL_SEED, host_seed=CANONICAL_SEED + 1, store="containerd").truth.containerd
    ct = truth.containerd
    image_keys = lambda t: [s.key for s in t.snapshots if s.key.startswith("sha256:")]  # noqa: E731
    assert image_keys(ct) == image_keys(other)  # same pulls, same order
    assert [b.digest for b in ct.blobs] == [b.digest for b in other.blobs]
    # what else the user did on each host (containers run with --rm) used up other numbers
    assert [s.id for s in ct.snapshots] != [s.id for s in other.snapshots]
    assert ct.snapshots[0].id == other.snapshots[0].id == 1


def test_another_seed_changes_every_snapshot_key(truth):
    other = cached_root(seed=CANONICAL_SEED + 1, images=["nginx:latest"], containers=False, store="containerd").truth
    keys = {s.key for s in truth.containerd.snapshots}
    assert keys.isdisjoint(s.key for s in other.containerd.snapshots)


# -- safety and non-root -------------------------------------------------------------------------


def test_refuses_live_containerd_roots_and_replaces_only_its_own_builds(tmp_path):
    with pytest.raises(LiveDockerRootError):
        check_target(Path("/var/lib/containerd"), force=True)
    target = tmp_path / "root"
    build_root(target, images=["alpine:3.19"], containers=False, store="containerd")
    assert looks_built(target)
    with pytest.raises(TargetNotEmptyError):
        check_target(target, force=False)
    check_target(target, force=True)  # an earlier build may be replaced
    (target / "io.containerd.runtime.v2.task" / "moby" / "abc").mkdir(parents=True)  # a real task
    with pytest.raises(LiveDockerRootError):
        check_target(target, force=True)
    assert not looks_built(target)


def test_without_mknod_and_trusted_xattrs_the_build_warns_and_uses_the_classic_fallbacks(tmp_path, monkeypatch):
    real_setxattr = os.setxattr

    def no_mknod(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    def no_trusted(path, name, *args, **kwargs):
        if str(name).startswith("trusted."):
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_setxattr(path, name, *args, **kwargs)

    monkeypatch.setattr(os, "mknod", no_mknod)
    monkeypatch.setattr(os, "setxattr", no_trusted)
    target = tmp_path / "root"
    with pytest.warns(DegradedRootWarning):
        truth = build_root(target, images=["nginx:latest"], store="containerd")
    assert any("whiteout" in n for n in truth.notes) and any("opaque" in n for n in truth.notes)
    assert truth.forms["whiteout"] in ("user.overlay.whiteout", "mode-0000 file")
    assert truth.forms["opaque"] in ("user.overlay.opaque", "unmarked")
    ct = truth.containerd
    for layer in truth.image("nginx:latest").layers:
        fs = target / ct.snapshot(layer.db_id).fs_dir
        for path in layer.changes.deleted:
            assert formats.is_whiteout(fs / path.lstrip("/"))
        for path in layer.changes.opaque:
            assert formats.is_opaque(fs / path.lstrip("/"))


def test_cli_builds_a_containerd_root_with_its_truth(tmp_path, capsys):
    from dockerlab.cli import main

    out, truth_file = tmp_path / "ctd", tmp_path / "truth.json"
    assert main(["build", "--out", str(out), "--store", "containerd", "--images", "alpine:3.19", "--truth", str(truth_file)]) == 0
    assert "containerd" in capsys.readouterr().out
    data = json.loads(truth_file.read_text())
    assert data["store"] == "containerd" and data["containerd"]["namespace"] == "moby"
    assert (out / META_DB).is_file()


def test_pyfakefs_fixture_gives_a_containerd_root(containerd_root):
    assert containerd_root.path == Path("/var/lib/containerd")
    meta = bbolt.read(containerd_root.path / META_DB)
    assert meta.bucket("v1")[b"version"] == b"\x08"
    first = containerd_root.truth.containerd.snapshots[0]
    assert (containerd_root.path / first.fs_dir).is_dir()


def test_an_interrupted_containerd_build_leaves_nothing_and_keeps_the_old_tree(tmp_path, monkeypatch):
    import fakeroot_builder.containerd_store as store
    from dockerlab.cli import main

    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--store", "containerd", "--images", "busybox:latest"]) == 0
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    real = store.write_containerd

    def write_then_die(cplan, target):
        real(cplan, target)  # all on disk in the staging dir (0000 work/work dirs too); no rename
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "write_containerd", write_then_die)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["build", "--out", str(out), "--store", "containerd", "--images", "alpine:3.19", "--force"])
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["root"]


def test_the_root_of_a_running_containerd_is_refused_even_when_relative(tmp_path):
    import subprocess
    import time

    from fakeroot_builder.safety import running_daemon_roots

    if not Path("/proc/self/cmdline").exists():
        pytest.skip("no /proc on this platform")
    # a process whose argv is "containerd … --root rel/root", started in tmp_path
    proc = subprocess.Popen(
        ["bash", "-c", 'exec -a containerd sh -c "sleep 30; true" x --root rel/root'], cwd=tmp_path
    )
    try:
        for _ in range(100):
            if Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(b"containerd\0"):
                break
            time.sleep(0.02)
        assert (tmp_path / "rel" / "root").resolve() in running_daemon_roots()
        with pytest.raises(LiveDockerRootError):
            check_target(tmp_path / "rel" / "root", force=True)
        with pytest.raises(LiveDockerRootError):
            check_target(tmp_path / "rel", force=True)  # a directory holding it
    finally:
        proc.kill()
        proc.wait()
