"""Lab 3 — the containerd image store. Graded: expected answers come from the builder's ground truth
(``RootTruth.containerd``), never from solutions/.

Run: ``tox -e lab3`` (your code) · ``tox -e lab3 -- -k task3`` (one task) · ``tox -e solutions``.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from fakeroot_builder import bbolt
from fakeroot_builder.cache import graded_root
from fakeroot_builder.errors import MissingEntryError, UnknownReferenceError

task = pytest.mark.task
UNCOMPRESSED = "containerd.io/uncompressed"


def _short(name: str) -> str:
    """How a user types an image record's name: ``nginx`` for ``docker.io/library/nginx:latest``."""
    return name.removeprefix("docker.io/").removeprefix("library/").removesuffix(":latest")


def _target(image, name: str) -> dict:
    return {"name": name, "digest": image.target_digest, "media_type": image.target_media_type, "size": image.target_size}


def _paths(value):
    """Compare paths as paths: ``a//b`` and ``a/b/`` are ``a/b``."""
    if isinstance(value, str):
        return os.path.normpath(value)
    if isinstance(value, list):
        return [_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: _paths(v) for k, v in value.items()}
    return value


def _without_name(value):
    return {k: v for k, v in value.items() if k != "name"} if isinstance(value, dict) else value


# -- task 1 --------------------------------------------------------------------------------------


@task("lab3", 1)
def test_every_image_record_of_meta_db_is_listed(lab3, croot, check):
    names = sorted(n for image in croot.truth.containerd.images for n in image.names)
    check(lab3.image_names, croot, expect=names)


@task("lab3", 1)
def test_a_short_name_finds_its_full_image_record(lab3, croot, check):
    for image in croot.truth.containerd.images:
        for name in image.names:
            check(lab3.image_target, croot, _short(name), expect=_target(image, name))
            check(lab3.image_target, croot, name, expect=_target(image, name))


@task("lab3", 1)
def test_the_image_id_docker_29_shows_is_the_target_digest(lab3, croot, check):
    image = croot.truth.containerd.image("nginx:latest")
    for ref in (image.target_digest, image.target_digest[7:], image.target_digest[7:19]):
        check(lab3.image_target, croot, ref, expect=_target(image, image.names[0]), normalize=_without_name)


@task("lab3", 1)
def test_a_digest_reference_finds_the_image(lab3, croot, check):
    image = croot.truth.containerd.image("nginx:latest")
    ref = f"nginx@{image.target_digest}"
    check(lab3.image_target, croot, ref, expect=_target(image, image.names[0]), normalize=_without_name)


@task("lab3", 1)
def test_an_unknown_image_is_an_error_naming_it(lab3, croot, check):
    check.raises(lab3.image_target, croot, "no-such-image:1", error=UnknownReferenceError, mentions="no-such-image")


@task("lab3", 1)
def test_every_blob_is_a_file_named_by_its_digest(lab3, croot, check):
    for blob in croot.truth.containerd.blobs:
        check(lab3.blob_path, croot, blob.digest, expect=str(croot.path / blob.path), normalize=os.path.normpath)


@task("lab3", 1)
def test_a_blob_that_is_not_in_the_store_is_an_error(lab3, croot, check):
    missing = "sha256:" + "0" * 64
    check.raises(lab3.blob_path, croot, missing, error=MissingEntryError)


@task("lab3", 1)
def test_manifest_and_config_of_every_image(lab3, croot, check):
    for image in croot.truth.containerd.images:
        ref = _short(image.names[0])
        check(lab3.image_manifest, croot, ref, expect=image.target_digest)
        check(lab3.image_config, croot, ref, expect=image.config_digest)


@task("lab3", 1)
def test_the_config_digest_is_the_classic_image_id(lab3, croot, check):
    for image in croot.truth.images:
        check(lab3.image_config, croot, image.name, expect=image.image_id)


def _pull_as_index(root, image, name: str) -> str:
    """Make the record ``name`` point at an index, as a `docker pull` of a multi-platform image
    leaves it: an attestation manifest (present, platform unknown/unknown), linux/arm64 (its blob
    absent, as Docker keeps only what it pulled), then linux/amd64, the image's manifest.
    Returns the index digest."""
    entry = lambda digest, arch: {  # noqa: E731
        "mediaType": image.target_media_type, "digest": digest, "size": 1234 if arch == "arm64" else image.target_size,
        "platform": {"architecture": arch, "os": "linux"},
    }
    absent = "sha256:" + hashlib.sha256(b"an arm64 manifest that was never pulled").hexdigest()
    blobs = root.path / "io.containerd.content.v1.content/blobs/sha256"
    attestation = json.dumps({"schemaVersion": 2, "mediaType": image.target_media_type, "layers": []}).encode()
    (blobs / hashlib.sha256(attestation).hexdigest()).write_bytes(attestation)  # present, but no platform
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**entry("sha256:" + hashlib.sha256(attestation).hexdigest(), "unknown"), "size": len(attestation),
             "platform": {"architecture": "unknown", "os": "unknown"}},
            entry(absent, "arm64"), entry(image.target_digest, "amd64"),
        ],
    }).encode()
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    (blobs / digest[7:]).write_bytes(index)
    meta_path = root.path / "io.containerd.metadata.v1.bolt/meta.db"
    meta = bbolt.read(meta_path)
    target = meta.bucket("v1", "moby", "images", name, "target")
    target.items[b"digest"] = digest.encode()
    target.items[b"mediatype"] = b"application/vnd.oci.image.index.v1+json"
    target.items[b"size"] = bytes([len(index) * 2 & 0x7F | 0x80, len(index) * 2 >> 7])  # zigzag varint
    bbolt.write(meta_path, meta, mode=0o644)
    return digest


@task("lab3", 1)
def test_an_index_target_leads_to_the_linux_amd64_manifest_that_is_present(lab3, croot, broken_copy, check):
    pulled = broken_copy(croot)
    image = pulled.truth.containerd.image("nginx:latest")
    name = image.names[0]
    index = _pull_as_index(pulled, image, name)
    check(lab3.image_target, pulled, _short(name), expect={
        "name": name, "digest": index, "media_type": "application/vnd.oci.image.index.v1+json",
        "size": (pulled.path / "io.containerd.content.v1.content/blobs/sha256" / index[7:]).stat().st_size,
    })
    check(lab3.image_manifest, pulled, _short(name), expect=image.target_digest)
    check(lab3.image_config, pulled, _short(name), expect=image.config_digest)


# -- task 2 --------------------------------------------------------------------------------------


@task("lab3", 2)
def test_layer_blobs_are_the_manifest_layers_base_first(lab3, croot, check):
    for image in croot.truth.containerd.images:
        check(lab3.layer_digests, croot, image.names[0], expect=list(image.layer_digests))


@task("lab3", 2)
def test_diff_ids_are_the_config_rootfs(lab3, croot, check):
    for image in croot.truth.images:
        check(lab3.image_diff_ids, croot, image.name, expect=list(image.layer_ids))


@task("lab3", 2)
def test_each_layer_blob_is_labelled_with_its_diff_id(lab3, croot, check):
    for image in croot.truth.images:
        for layer in image.layers:
            assert croot.truth.containerd.blob(layer.compressed_digest).labels[UNCOMPRESSED] == layer.layer_id
            check(lab3.diff_id_of, croot, layer.compressed_digest, expect=layer.layer_id)


@task("lab3", 2)
def test_a_diff_id_leads_back_to_its_blobs(lab3, croot, check):
    blobs = croot.truth.containerd.blobs
    diff_ids = {layer.layer_id for image in croot.truth.images for layer in image.layers}
    for diff_id in sorted(diff_ids):
        expected = sorted(b.digest for b in blobs if b.labels.get(UNCOMPRESSED) == diff_id)
        assert expected
        check(lab3.blobs_of_diff_id, croot, diff_id, expect=expected)


@task("lab3", 2)
def test_a_config_blob_has_no_uncompressed_label(lab3, croot, check):
    image = croot.truth.containerd.image("nginx:latest")
    check.raises(lab3.diff_id_of, croot, image.config_digest, error=MissingEntryError)


# -- task 3 --------------------------------------------------------------------------------------


def _snapshot(snap) -> dict:
    return {"key": snap.key, "name": snap.name, "id": snap.id, "kind": snap.kind, "parent": snap.parent}


@task("lab3", 3)
def test_snapshot_keys_are_the_chain_ids_of_lab_1(lab3, croot, check):
    for image in croot.truth.images:
        assert croot.truth.containerd.image(image.name).chain_ids == image.db_ids
        check(lab3.image_snapshot_keys, croot, image.name, expect=list(image.db_ids))


@task("lab3", 3)
def test_every_snapshot_reads_back_from_both_databases(lab3, croot, check):
    for snap in croot.truth.containerd.snapshots:
        check(lab3.read_snapshot, croot, snap.key, expect=_snapshot(snap))


@task("lab3", 3)
def test_the_number_in_a_snapshot_name_is_not_its_directory(lab3, croot, check):
    differ = [s for s in croot.truth.containerd.snapshots if int(s.name.split("/")[1]) != s.id]
    assert differ, "meta.db's sequence and the snapshotter's ids must differ somewhere"
    for snap in differ:
        check(lab3.snapshot_dir, croot, snap.key, expect=str(croot.path / snap.fs_dir), normalize=os.path.normpath)


@task("lab3", 3)
def test_every_layer_of_every_image_has_its_snapshot_directory(lab3, croot, check):
    ct = croot.truth.containerd
    for image in croot.truth.images:
        for layer in image.layers:
            check(lab3.snapshot_dir, croot, layer.db_id, expect=str(croot.path / ct.snapshot(layer.db_id).fs_dir),
                  normalize=os.path.normpath)


@task("lab3", 3)
def test_an_unknown_snapshot_key_is_an_error(lab3, croot, check):
    check.raises(lab3.read_snapshot, croot, "sha256:" + "e" * 64, error=UnknownReferenceError)


# -- task 4 --------------------------------------------------------------------------------------


def _mount(croot, container) -> dict:
    own = croot.truth.containerd.snapshot(container.snapshot)
    return {
        "lowerdir": [str(croot.path / d) for d in container.lowerdirs],
        "upperdir": str(croot.path / container.upperdir),
        "workdir": str(croot.path / own.dir / "work"),
    }


@task("lab3", 4)
def test_every_container_mounts_its_init_layer_then_its_image(lab3, croot, check):
    containers = croot.truth.containerd.containers
    assert containers
    for container in containers:
        check(lab3.container_mount, croot, container.id, expect=_mount(croot, container), normalize=_paths)


@task("lab3", 4)
def test_a_container_id_prefix_is_enough(lab3, croot, check):
    container = croot.truth.containerd.containers[0]
    check(lab3.container_mount, croot, container.id[:12], expect=_mount(croot, container), normalize=_paths)


@task("lab3", 4)
def test_an_unknown_container_is_an_error(lab3, croot, check):
    check.raises(lab3.container_mount, croot, "f" * 64, error=UnknownReferenceError)


# -- task 5 --------------------------------------------------------------------------------------


def _gc_refs(blob) -> dict:
    content = sorted(v for k, v in blob.labels.items() if k.startswith("containerd.io/gc.ref.content"))
    snapshots = sorted(v for k, v in blob.labels.items() if k.startswith("containerd.io/gc.ref.snapshot.overlayfs"))
    return {"content": content, "snapshots": snapshots}


@task("lab3", 5)
def test_gc_references_of_every_blob(lab3, croot, check):
    for blob in croot.truth.containerd.blobs:
        check(lab3.gc_refs, croot, blob.digest, expect=_gc_refs(blob))


def _rmi(ct, name: str) -> dict:
    """What removing the record ``name`` frees, from the truth's structure (not from labels):
    an image owns its target, config and layer blobs and its layers' snapshots; other images
    (or other names of the same image) and containers' leases hold theirs."""
    image = ct.image(name)

    def owned(img):
        return {img.target_digest, img.config_digest, *img.layer_digests}, set(img.chain_ids)

    held_content: set[str] = set()
    held_snaps: set[str] = set()
    for other in ct.images:
        if other is not image or len(other.names) > 1:
            content, snaps = owned(other)
            held_content |= content
            held_snaps |= snaps
    for lease in ct.leases:
        held_content |= set(lease.content)
        for key in lease.snapshots:
            while key is not None and key not in held_snaps:
                held_snaps.add(key)
                key = ct.snapshot(key).parent
    own_content, own_snaps = owned(image)
    return {
        "removed_content": sorted(own_content - held_content),
        "removed_snapshots": sorted(own_snaps - held_snaps),
        "kept_content": sorted(own_content & held_content),
        "kept_snapshots": sorted(own_snaps & held_snaps),
    }


@task("lab3", 5)
def test_rmi_of_an_image_with_a_container_keeps_its_snapshots(lab3, croot, check):
    ct = croot.truth.containerd
    used = {c.image for c in ct.containers}
    assert used
    for name in sorted(used):
        expected = _rmi(ct, name)
        assert expected["kept_snapshots"] and not expected["removed_snapshots"]
        check(lab3.rmi_effect, croot, _short(ct.image(name).names[0]), expect=expected)


@task("lab3", 5)
def test_rmi_of_every_image(lab3, croot, check):
    ct = croot.truth.containerd
    for image in ct.images:
        check(lab3.rmi_effect, croot, image.names[0], expect=_rmi(ct, image.name))


# -- task 6 --------------------------------------------------------------------------------------


@task("lab3", 6)
def test_the_same_image_in_both_stores_has_the_same_chain_ids(lab3, croot, check):
    classic = graded_root("full", croot.truth.seed)
    ct = croot.truth.containerd
    for name in ("nginx:latest", "alpine:3.19", "redis:7"):
        rows = [
            {"layer_id": layer.layer_id, "db_id": layer.db_id, "snapshot_key": key,
             "cache_id": layer.cache_id, "snapshot_id": ct.snapshot(key).id}
            for layer, key in zip(classic.truth.image(name).layers, ct.image(name).chain_ids)
        ]
        assert all(r["db_id"] == r["snapshot_key"] for r in rows)
        check(lab3.compare_stores, classic, croot, _short(name), expect=rows)
