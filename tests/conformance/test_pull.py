"""Our blobs and manifests pushed to a registry and pulled by a real daemon, vs the builder's root.

The registry is ``127.0.0.1:PORT`` and the images live under ``library/`` there, so only the
registry host differs from a Docker Hub pull: ``127.0.0.1:PORT/library/nginx`` is mapped to
``nginx`` (references) and to ``docker.io/library/nginx`` (``SourceRepository``). Cache-ids and
links are random on both sides and are mapped through the layer store (same db id).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compare import layer_dirs, map_text, stable_pull_lines
from phases import PULLED, PullSnapshot
from dockerlab.export import pull_log
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.plan import Plan

import realdocker

pytestmark = pytest.mark.conformance

_LAST_UPDATED = re.compile(r"(/lastUpdated  = )b'[^']*'")
#: Compared elsewhere by content: tar-split after decompression (Go's flate is not zlib's, see
#: the facts §4) and repositories.json after mapping the registry's names (its size changes).
_SIZE_ONLY = re.compile(r"(/tar-split\.json\.gz|/repositories\.json)  \(\d+ bytes\)$")


def _masked(line: str) -> str:
    """A listing line with values that are compared elsewhere (or random) masked."""
    return _SIZE_ONLY.sub(r"\1  (<size>)", _LAST_UPDATED.sub(r"\1<time>", line))


def _to_ours(snap: PullSnapshot, text: str, extra: dict[str, str] | None = None) -> str:
    """Real daemon text with the registry's names spelled as Docker Hub's (and ``extra`` mapped)."""
    mapping = {
        f'"SourceRepository":"{snap.address}/': '"SourceRepository":"docker.io/',
        f"{snap.address}/library/": "",
        **(extra or {}),
    }
    return map_text(text, mapping)


def _already_there(plan: Plan, name: str) -> set[str]:
    """Short blob ids of ``name``'s layers that an earlier pull of :data:`PULLED` brought."""
    seen: set[str] = set()
    for ip in plan.images:
        if ip.recipe.name == name:
            return {lp.layer.compressed_digest[7:19] for lp in ip.layers if lp.db_id in seen}
        seen |= {lp.db_id for lp in ip.layers}
    raise KeyError(name)


def _on_this_host(lines: list[str], present: set[str]) -> list[str]:
    """A fresh-host transcript as it reads when the layers ``present`` are already there."""
    out = []
    for line in lines:
        short, _, status = line.partition(": ")
        if short in present:
            if status == "Pulling fs layer":
                out.append(f"{short}: Already exists")
            continue
        out.append(line)
    return out


@pytest.mark.parametrize("name", PULLED)
def test_manifest_digest_is_ours(name: str, pulled: PullSnapshot, built_pulled: BuiltRoot) -> None:
    truth = built_pulled.truth.image(name)
    assert pulled.pushed_digests[name] == truth.manifest_digest
    assert pulled.inspect[name]["Id"] == truth.image_id
    assert pulled.inspect[name]["RepoDigests"] == [f"{pulled.real_ref(name.split(':')[0])}@{truth.manifest_digest}"]


@pytest.mark.parametrize("name", PULLED)
def test_pull_transcript(name: str, pulled: PullSnapshot, built_pulled: BuiltRoot, pulled_plan: Plan) -> None:
    real = stable_pull_lines(pulled.transcripts[name])
    real = [f"docker.io/library/{name}" if line == pulled.real_ref(name) else _to_ours(pulled, line) for line in real]
    ours = stable_pull_lines(pull_log(built_pulled.path, name, progress=True))
    assert real == _on_this_host(ours, _already_there(pulled_plan, name))


@pytest.mark.parametrize("name", PULLED)
def test_pull_log_of_the_real_root(name: str, pulled: PullSnapshot, pulled_plan: Plan) -> None:
    """``dockerlab pull-log`` on the daemon's own root reproduces its transcript."""
    real = stable_pull_lines(pulled.transcripts[name])
    ours = stable_pull_lines(pulled.pull_logs[name])
    assert real == _on_this_host(ours, _already_there(pulled_plan, name))


def test_repositories_json(pulled: PullSnapshot, built_pulled: BuiltRoot) -> None:
    ours = (built_pulled.path / "image/overlay2/repositories.json").read_bytes()
    assert _to_ours(pulled, pulled.files["repositories.json"].decode()).encode() == ours


def test_distribution_files(pulled: PullSnapshot, built_pulled: BuiltRoot) -> None:
    base = built_pulled.path / "image/overlay2"
    ours = {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted((base / "distribution").rglob("*")) if p.is_file()}
    real = {k: _to_ours(pulled, v.decode()).encode() for k, v in pulled.files.items() if k.startswith("distribution/")}
    assert sorted(real) == sorted(ours)
    for path in sorted(ours):
        assert real[path] == ours[path], path


def test_image_metadata_files(pulled: PullSnapshot, built_pulled: BuiltRoot) -> None:
    base = built_pulled.path / "image/overlay2"
    ours = sorted(p.relative_to(base).as_posix() for p in (base / "imagedb/metadata").rglob("*") if p.is_file())
    assert sorted(k for k in pulled.files if k.startswith("imagedb/metadata/")) == ours


def test_tree_listing(pulled: PullSnapshot, built_pulled: BuiltRoot) -> None:
    """Every path, mode and small file of image/, overlay2/ and containers/, ids mapped."""
    ours_dirs = layer_dirs(built_pulled.path)
    ids: dict[str, str] = {}
    for db_id, (cache_id, link) in pulled.layers.items():
        ids[cache_id], ids[link] = ours_dirs[db_id]
    real = [_masked(_to_ours(pulled, line, ids)) for line in pulled.tree]
    ours = [_masked(line) for line in realdocker.tree_listing(built_pulled.path)]
    only_real = sorted(set(real) - set(ours))
    only_ours = sorted(set(ours) - set(real))
    assert not only_real and not only_ours, (
        "tree listings differ\n  real only:\n    " + "\n    ".join(only_real[:30])
        + "\n  ours only:\n    " + "\n    ".join(only_ours[:30])
    )


@pytest.mark.parametrize("name", PULLED)
def test_dockerlab_inspect_on_the_real_root(name: str, pulled: PullSnapshot) -> None:
    """``dockerlab inspect --json`` on the daemon's data root agrees with the daemon."""
    got = pulled.dockerlab_inspect[name]
    info = pulled.inspect[name]
    assert got["image_id"] == info["Id"]
    assert [layer["layer_id"] for layer in got["layers"]] == info["RootFS"]["Layers"]
    assert pulled.real_ref(name) in got["repo_tags"]
    for layer in got["layers"]:
        entry = pulled.layerdb[layer["db_id"]]
        assert layer["cache_id"] == entry["cache-id"].decode()
        assert layer["size"] == int(entry["size"])
        assert layer["layer_id"] == entry["diff"].decode()
        assert (layer["parent"] or "").encode() == entry.get("parent", b"")
        assert (layer["cache_id"], layer["link"]) == pulled.layers[layer["db_id"]]
        assert Path(layer["diff_dir"]).name == "diff" and layer["cache_id"] in layer["diff_dir"]


@pytest.mark.parametrize("name", PULLED)
def test_export_of_the_real_root_is_docker_save(name: str, pulled: PullSnapshot) -> None:
    """``dockerlab export`` on the daemon's own root writes what ``docker save`` writes."""
    real, ours = pulled.saved_equal[name]
    assert ours == real
