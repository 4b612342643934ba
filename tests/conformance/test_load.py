"""``dockerlab export`` → real ``docker load``: ids, layer store and unpacked files vs the builder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import realdocker
from compare import describe_tree, layer_dirs, layerdb_files, tree_differences
from phases import CATALOGUE, Loaded
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.plan import Plan

pytestmark = pytest.mark.conformance


def _inspect(daemon: realdocker.Daemon, name: str) -> dict:
    return dict(json.loads(str(daemon.docker("image", "inspect", name).stdout))[0])



@pytest.mark.parametrize("name", CATALOGUE)
def test_load_gives_the_same_image(name: str, daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot) -> None:
    truth = built.truth.image(name)
    assert loaded[name].stdout == f"Loaded image: {name}\n"
    info = _inspect(daemon, name)
    assert info["Id"] == truth.image_id
    assert info["RootFS"]["Layers"] == list(truth.layer_ids)
    assert info["Size"] == sum(layer.size for layer in truth.layers)


@pytest.mark.parametrize("name", CATALOGUE)
def test_layerdb_entries(
    name: str, daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot, built_plan: Plan
) -> None:
    for layer in built.truth.image(name).layers:
        real = layerdb_files(daemon.data_root, layer.db_id)
        ours = layerdb_files(built.path, layer.db_id)
        assert sorted(real) == sorted(ours), f"{layer.db_id}: files of the layerdb entry"
        for key in ("diff", "size", "parent"):
            assert real.get(key) == ours.get(key), f"{layer.db_id}/{key}"
        tar_split = gzip.decompress(real["tar-split.json.gz"])
        assert tar_split == built_plan.layers[layer.db_id].layer.tar_split, f"{layer.db_id}/tar-split.json.gz (decompressed)"


@pytest.mark.parametrize("name", CATALOGUE)
def test_diff_trees(name: str, daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot) -> None:
    real_dirs = layer_dirs(daemon.data_root)
    problems: list[str] = []
    for layer in built.truth.image(name).layers:
        real_diff = Path(daemon.data_root) / "overlay2" / real_dirs[layer.db_id][0] / "diff"
        ours = describe_tree(built.path / layer.diff_dir)
        real = describe_tree(real_diff)
        problems += [f"layer {layer.layer_id[7:19]} ({layer.db_id[7:19]}): {d}" for d in tree_differences(ours, real)]
    assert not problems, "diff/ differs from the real daemon's:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("name", CATALOGUE)
def test_docker_save_gives_back_our_archive(
    name: str, daemon: realdocker.Daemon, loaded: dict[str, Loaded], tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    daemon.docker("save", "-o", str(saved), name)
    assert saved.read_bytes() == loaded[name].archive.read_bytes()
