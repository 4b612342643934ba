"""(a) ``ctr -n moby images import`` of our ``dockerlab export`` archives into an empty real containerd.

The same ids must come out as the builder's ground truth says: the config blob byte for byte,
one blob per DiffID (a docker-save archive carries uncompressed layers), snapshot keys equal to
the ChainIDs of lab 1, each parented on the ChainID below; and the databases have the shape the
format page describes (names ``moby/<seq>/<key>``, ids from the bucket sequence, parents index).
Ids, times and other values containerd draws are compared by shape only.
"""

from __future__ import annotations

import re

import pytest

from ctrstate import GO_TIME_RE, NS, Capture, catalogue, full_name
from fakeroot_builder import bbolt
from fakeroot_builder.cache import BuiltRoot

pytestmark = pytest.mark.conformance

NAME_RE = re.compile(rb"^moby/(\d+)/(.+)$")


def uvarint(data: bytes) -> tuple[int, int]:
    """(value, bytes used) of a Go uvarint."""
    value = shift = 0
    for i, byte in enumerate(data):
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise ValueError(f"truncated uvarint {data!r}")


def images_of(classic: BuiltRoot) -> list:
    return [classic.truth.image(name) for name in catalogue()]


def test_every_image_is_listed_under_its_name(imported: Capture, classic: BuiltRoot):
    want = {full_name(name) for name in catalogue()}
    assert want <= set(imported.images), f"containerd {imported.version} lists {sorted(imported.images)}"


def test_the_config_blob_is_ours_byte_for_byte(imported: Capture, classic: BuiltRoot):
    for image in images_of(classic):
        ours = (classic.path / "image/overlay2/imagedb/content/sha256" / image.image_id[7:]).read_bytes()
        assert imported.blobs.get(image.image_id) == ours, f"{image.name}: config blob {image.image_id}"
        assert image.image_id in imported.content


def test_each_layer_is_a_blob_named_by_its_diffid(imported: Capture, classic: BuiltRoot):
    blobs = imported.meta.bucket("v1", NS, "content", "blob")
    for image in images_of(classic):
        for layer in image.layers:
            assert layer.layer_id in imported.content, f"{image.name}: no blob {layer.layer_id}"
            labels = blobs.bucket(layer.layer_id, "labels")
            assert labels["containerd.io/uncompressed"] == layer.layer_id.encode()


def test_a_garbage_collection_leaves_configs_layers_and_manifests(imported: Capture, classic: BuiltRoot):
    """Import also stores the index it makes and the archive's own files (manifest.json,
    repositories, VERSION, v1 json): no image refers to them, so the GC that follows the
    import's lease removes them (asynchronously: right after one import they are still listed)."""
    keep = {image.image_id for image in images_of(classic)}
    keep |= {layer.layer_id for image in images_of(classic) for layer in image.layers}
    keep |= {digest for _, digest in imported.images.values()}  # the manifests import made
    assert imported.content_after_gc == keep


def test_snapshot_keys_are_the_chain_ids_parented_down_the_stack(imported: Capture, classic: BuiltRoot):
    for image in images_of(classic):
        below = ""
        for layer in image.layers:
            assert imported.snapshots.get(layer.db_id) == (below, "Committed"), (
                f"{image.name}: snapshot {layer.db_id} (ChainID of {layer.layer_id})"
            )
            below = layer.db_id
    chain_ids = {layer.db_id for image in images_of(classic) for layer in image.layers}
    assert set(imported.snapshots) == chain_ids  # nothing else: no active snapshot after import


def test_the_config_holds_the_top_chain_id_for_the_garbage_collector(imported: Capture, classic: BuiltRoot):
    blobs = imported.meta.bucket("v1", NS, "content", "blob")
    for image in images_of(classic):
        labels = blobs.bucket(image.image_id, "labels")
        assert labels["containerd.io/gc.ref.snapshot.overlayfs"] == image.layers[-1].db_id.encode()


def test_meta_db_snapshot_records_have_the_documented_shape(imported: Capture):
    version = imported.meta.bucket("v1")["version"]
    assert version == (b"\x06" if imported.version == "1.6" else b"\x08")
    snaps = imported.meta.bucket("v1", NS, "snapshots", "overlayfs")
    seqs = []
    for key in snaps:
        rec = snaps.bucket(key)
        match = NAME_RE.match(rec["name"])
        assert match and match.group(2) == key, f"name {rec['name']!r} of {key!r}"
        seqs.append(int(match.group(1)))
        assert GO_TIME_RE.match(rec["createdat"]) and GO_TIME_RE.match(rec["updatedat"])
        if imported.snapshots[key.decode()][0]:
            assert rec["parent"] == imported.snapshots[key.decode()][0].encode()
    assert len(set(seqs)) == len(seqs) and max(seqs) <= snaps.sequence


def test_snapshotter_ids_come_from_the_bucket_sequence_and_name_the_directories(imported: Capture):
    snaps = imported.snap_db.bucket("v1", "snapshots")
    meta_names = {
        imported.meta.bucket("v1", NS, "snapshots", "overlayfs", key)["name"]
        for key in imported.meta.bucket("v1", NS, "snapshots", "overlayfs")
    }
    assert set(snaps) == meta_names  # the same "moby/<seq>/<key>" names in both databases
    ids = {}
    for name in snaps:
        rec = snaps.bucket(name)
        ident, used = uvarint(rec["id"])
        assert used == len(rec["id"])
        assert rec["kind"] == b"\x03"  # committed
        ids[name] = ident
    assert sorted(ids.values()) == list(range(1, len(ids) + 1))  # nothing removed: no gaps
    assert snaps.sequence == len(ids)  # the next snapshot gets len + 1
    assert imported.snapshot_dirs == sorted(str(i) for i in ids.values())
    # v1/parents: uvarint(parent id) 00 uvarint(child id) -> the child's name
    parents = imported.snap_db.bucket("v1", "parents")
    expected = {}
    for name in snaps:
        rec = snaps.bucket(name)
        if "parent" in rec:
            pid = ids[rec["parent"]]
            expected[bbolt_key(pid, ids[name])] = name
    assert parents.items == expected


def bbolt_key(parent: int, child: int) -> bytes:
    def enc(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    return enc(parent) + b"\x00" + enc(child)


def test_import_labels_on_snapshots(imported: Capture):
    """1.6's import labels no snapshot; 2.x labels each with containerd.io/snapshot.ref = its key."""
    snaps = imported.meta.bucket("v1", NS, "snapshots", "overlayfs")
    for key in snaps:
        labels = snaps.bucket(key).get("labels") or bbolt.Bucket()
        if imported.version == "1.6":
            assert "containerd.io/snapshot.ref" not in labels
        else:
            assert labels["containerd.io/snapshot.ref"] == key


def test_the_databases_read_the_same_while_containerd_runs(imported: Capture):
    """dockerlab's tools read a live host's files: containerd holds an exclusive flock on them,
    which a plain read ignores; the last committed transaction is what comes back."""
    assert imported.meta_live.bucket("v1", NS, "images") == imported.meta.bucket("v1", NS, "images")
    assert imported.meta_live.bucket("v1", NS, "content") == imported.meta.bucket("v1", NS, "content")
    assert imported.snap_db_live == imported.snap_db
