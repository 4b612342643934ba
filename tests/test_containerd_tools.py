"""The tools on a containerd root (Docker 29): inspect, export and pull-log find the store, say which
it is, and answer from the builder's truth; a store the user may not read is a one-line sudo hint."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from dockerlab.cli import main
from fakeroot_builder import CANONICAL_SEED
from fakeroot_builder.cache import graded_root

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ctd():
    return graded_root("containerd", CANONICAL_SEED)


def test_inspect_says_it_found_a_containerd_store_and_shows_snapshot_ids(ctd, capsys):
    assert main(["inspect", "nginx", "--root", str(ctd.path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{ctd.path}: containerd image store")
    ct = ctd.truth.containerd
    image = ct.image("nginx:latest")
    assert image.target_digest in out and image.config_digest in out
    for key in image.chain_ids:
        assert os.path.join(str(ctd.path), ct.snapshot(key).fs_dir) in out


def test_inspect_json_of_a_containerd_root_is_the_truth(ctd, capsys):
    assert main(["inspect", "nginx", "--root", str(ctd.path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ct = ctd.truth.containerd
    image = ct.image("nginx:latest")
    assert got["store"] == "containerd" and got["image_id"] == image.target_digest
    assert got["config"] == image.config_digest and sorted(got["names"]) == sorted(image.names)
    assert got["layers"] == [
        {
            "layer_id": layer.layer_id,
            "digest": layer.compressed_digest,
            "snapshot_key": layer.db_id,
            "snapshot_id": ct.snapshot(layer.db_id).id,
            "kind": "committed",
            "parent": layer.parent,
            "fs_dir": os.path.join(str(ctd.path), ct.snapshot(layer.db_id).fs_dir),
        }
        for layer in ctd.truth.image("nginx:latest").layers
    ]


def test_a_docker_29_data_root_points_at_containerd(tmp_path, capsys):
    (tmp_path / "containers").mkdir()  # /var/lib/docker on Docker 29: no image/overlay2
    assert main(["inspect", "nginx", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "containerd" in err and "--root" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_a_root_only_store_is_a_sudo_hint(ctd, tmp_path, capsys):
    locked = tmp_path / "containerd"
    locked.mkdir(mode=0o700)
    (locked / "io.containerd.metadata.v1.bolt").mkdir()
    locked.chmod(0o000)
    try:
        assert main(["inspect", "nginx", "--root", str(locked)]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert "sudo" in err and str(locked) in err and len(err.strip().splitlines()) == 1


def test_export_of_a_containerd_root_is_an_oci_layout_with_the_blobs_byte_for_byte(ctd, tmp_path, capsys):
    out = tmp_path / "nginx.tar"
    assert main(["export", "nginx", "--root", str(ctd.path), "-o", str(out)]) == 0
    assert "containerd" in capsys.readouterr().out
    ct = ctd.truth.containerd
    image = ct.image("nginx:latest")
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    blobs = {n.rsplit("/", 1)[1] for n in files if n.startswith("blobs/")}
    assert blobs == {d[7:] for d in (image.target_digest, image.config_digest, *image.layer_digests)}
    index = json.loads(files["index.json"])
    assert [m["digest"] for m in index["manifests"]] == [image.target_digest]
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["Config"] == f"blobs/sha256/{image.config_digest[7:]}"
    assert manifest[0]["Layers"] == [f"blobs/sha256/{d[7:]}" for d in image.layer_digests]
    assert manifest[0]["RepoTags"] == ["nginx:latest"]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}


def test_pull_log_of_a_containerd_root_names_the_compressed_blobs_and_the_target(ctd, capsys):
    ct = ctd.truth.containerd
    image = next(i for i in ct.images if i.pulled and i.name == "nginx:latest")
    assert main(["pull-log", "nginx", "--root", str(ctd.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "latest: Pulling from library/nginx"
    assert lines[1:-3] == [f"{d[7:19]}: Pull complete" for d in image.layer_digests]
    assert lines[-3:] == [
        f"Digest: {image.target_digest}",
        "Status: Downloaded newer image for nginx:latest",
        "docker.io/library/nginx:latest",
    ]


def test_pull_log_of_a_built_image_says_it_was_not_pulled(ctd, capsys):
    built = [i for i in ctd.truth.containerd.images if not i.pulled]
    assert built, "the catalogue has images built on the host"
    assert main(["pull-log", built[0].names[0], "--root", str(ctd.path)]) == 2
    assert "not pulled" in capsys.readouterr().err


# -- the reference reader on databases real containerd wrote (tests/data/bbolt) -------------------


def _dump(path) -> dict[tuple[str, ...], str]:
    """bbolt's own cursor dump (Go): (bucket path…, key) → value, all decoded from hex."""
    out = {}
    for line in path.read_text().splitlines()[1:]:
        entry = json.loads(line)
        if "value" in entry:
            keys = tuple(bytes.fromhex(k).decode() for k in entry["path"]) + (bytes.fromhex(entry["key"]).decode(),)
            out[keys] = bytes.fromhex(entry["value"])
    return out


def _uvarint(data: bytes) -> int:
    return sum((b & 0x7F) << (7 * i) for i, b in enumerate(data))


@pytest.mark.parametrize("version", ["containerd-1.6", "containerd-2"])
def test_the_reference_reader_reads_what_real_containerd_wrote(version, tmp_path):
    from dockerlab.impl import load

    data = REPO / "tests" / "data" / "bbolt" / version
    (tmp_path / "io.containerd.metadata.v1.bolt").mkdir()
    (tmp_path / "io.containerd.snapshotter.v1.overlayfs").mkdir()
    (tmp_path / "io.containerd.metadata.v1.bolt" / "meta.db").write_bytes((data / "meta.db").read_bytes())
    (tmp_path / "io.containerd.snapshotter.v1.overlayfs" / "metadata.db").write_bytes((data / "metadata.db").read_bytes())
    meta, snapshotter = _dump(data / "meta.db.jsonl"), _dump(data / "metadata.db.jsonl")
    lab3 = load("lab3", "solutions")
    images = sorted({k[3] for k in meta if k[:3] == ("v1", "moby", "images")})
    assert images and lab3.image_names(str(tmp_path)) == images
    for name in images:
        assert lab3.image_target(str(tmp_path), name)["digest"] == meta[("v1", "moby", "images", name, "target", "digest")].decode()
    keys = sorted({k[4] for k in meta if k[:4] == ("v1", "moby", "snapshots", "overlayfs")})
    assert len(keys) >= 3
    for key in keys:
        name = meta[("v1", "moby", "snapshots", "overlayfs", key, "name")].decode()
        parent = meta.get(("v1", "moby", "snapshots", "overlayfs", key, "parent"))
        kind = {1: "view", 2: "active", 3: "committed"}[_uvarint(snapshotter[("v1", "snapshots", name, "kind")])]
        assert lab3.read_snapshot(str(tmp_path), key) == {
            "key": key, "name": name, "id": _uvarint(snapshotter[("v1", "snapshots", name, "id")]),
            "kind": kind, "parent": parent.decode() if parent else None,
        }


@pytest.mark.parametrize("handout", ["README.md", "README.ko.md"])
def test_the_handout_example_is_what_inspect_prints_on_the_canonical_tree(handout, ctd, capsys):
    text = (REPO / "labs" / "lab3" / handout).read_text(encoding="utf-8")
    example = text.split("<!-- example:begin -->\n```\n", 1)[1].split("```\n<!-- example:end -->", 1)[0]
    assert main(["inspect", "nginx", "--root", str(ctd.path)]) == 0
    assert capsys.readouterr().out.replace(str(ctd.path), "/home/you/fake-containerd") == example


# -- draw ----------------------------------------------------------------------------------------


def test_draw_of_a_containerd_root_shows_snapshot_dirs_and_a_container_on_top(ctd, capsys):
    ct = ctd.truth.containerd
    image = ct.image("nginx:latest")
    container = min((c for c in ct.containers if c.image == "nginx:latest"), key=lambda c: c.id)
    assert main(["draw", "nginx", "--root", str(ctd.path)]) == 0
    out = capsys.readouterr().out
    assert "(containerd;" in out and "snapshot key = ChainID" in out
    for key in image.chain_ids:
        assert f"dir snapshots/{ct.snapshot(key).id}" in out and key[7:19] in out
    assert f"{container.id[:12]} (container, read-write)" in out
    assert f"dir snapshots/{ct.snapshot(container.snapshot).id}" in out
    assert f"dir snapshots/{ct.snapshot(container.init_snapshot).id}" in out
    assert out.index("(container, read-write)") < out.index("layer 1 (base)")  # base at the bottom


def test_draw_svg_of_a_containerd_root(ctd, tmp_path, capsys):
    svg = tmp_path / "nginx.svg"
    assert main(["draw", "nginx", "--root", str(ctd.path), "--no-container", "--svg", str(svg)]) == 0
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<svg") and "(containerd)" in text and "snapshot key = ChainID" in text
    assert "(container, read-write)" not in text


def test_inspect_impl_labs_on_a_containerd_root_stands_in_for_unwritten_functions(ctd, tmp_path, monkeypatch, capsys):
    import shutil

    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "solutions" / "lab3" / "containerd.py", tmp_path / "labs" / "lab3" / "containerd.py")
    stub = (tmp_path / "labs" / "lab3" / "containerd.py").read_text()
    marker = "def read_snapshot(root: str, key: str) -> dict:\n"
    head, tail = stub.split(marker)
    body_end = tail.index("\n\n\ndef ")
    (tmp_path / "labs" / "lab3" / "containerd.py").write_text(
        head + marker + '    """Not written yet."""\n    raise NotImplementedError("task 3")' + tail[body_end:])
    os.symlink(REPO / "solutions", tmp_path / "solutions")
    monkeypatch.setenv("DOCKERLAB_REPO", str(tmp_path))
    assert main(["inspect", "nginx", "--root", str(ctd.path), "--impl", "labs", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["sources"]["image_target"] == "yours" and got["sources"]["read_snapshot"] == "reference"
    ct = ctd.truth.containerd
    assert [layer["snapshot_id"] for layer in got["layers"]] == [ct.snapshot(k).id for k in ct.image("nginx:latest").chain_ids]
