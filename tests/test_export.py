"""``dockerlab export`` and ``dockerlab pull-log`` without a daemon.

The save-archive format is checked against bytes a real dockerd 20.10 wrote
(``tests/data/daemon-save1/``); exports of built roots against the builder's own layers and
truth. ``tests/conformance/`` then feeds the exports to a real ``docker load``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dockerlab.cli import main
from dockerlab.export import (
    export_image,
    legacy_layers,
    pull_log,
    save_manifest,
    save_repositories,
    ustar_header,
)
from fakeroot_builder.build import plan_root
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.errors import (
    LayerMismatchError,
    MissingEntryError,
    NotPulledError,
    OutputExistsError,
    UnknownReferenceError,
)
from fakeroot_builder.plan import CANONICAL_SEED, ImagePlan, Plan, chain_ids

SAVE1 = Path(__file__).parent / "data" / "daemon-save1"
SAVE1_IMAGE = "42b69487a9920642293b307a817e184dd3a285d266918ac89988cf7d9f7714e6"


# -- the format, against a real daemon's archive -------------------------------------------------


def _save1_manifest() -> dict:
    return json.loads((SAVE1 / "manifest.json").read_bytes())[0]


def _save1_legacy() -> list[tuple[str, bytes]]:
    config = (SAVE1 / f"{SAVE1_IMAGE}.json").read_bytes()
    return legacy_layers(config, chain_ids(json.loads(config)["rootfs"]["diff_ids"]))


def test_v1_ids_are_the_real_daemons() -> None:
    real = [layer.removesuffix("/layer.tar") for layer in _save1_manifest()["Layers"]]
    assert [v1_id for v1_id, _ in _save1_legacy()] == real


@pytest.mark.parametrize("index", [0, 1, 2], ids=["base", "middle", "top"])
def test_v1_json_is_byte_identical(index: int) -> None:
    v1_id, doc = _save1_legacy()[index]
    assert doc == (SAVE1 / v1_id / "json").read_bytes()


def test_manifest_and_repositories_are_byte_identical() -> None:
    v1_ids = [v1_id for v1_id, _ in _save1_legacy()]
    assert save_manifest(SAVE1_IMAGE, ["lab/demo:1"], v1_ids) == (SAVE1 / "manifest.json").read_bytes()
    assert save_repositories(["lab/demo:1"], v1_ids[-1]) == (SAVE1 / "repositories").read_bytes()


def test_untagged_save_has_null_tags_and_no_repositories() -> None:
    assert json.loads(save_manifest(SAVE1_IMAGE, [], ["a" * 64]))[0]["RepoTags"] is None
    assert save_repositories([], "a" * 64) is None


def _real_headers() -> list[dict[str, bytes]]:
    """The header fields of every member of the real archive, from the dump."""
    rows = []
    for line in (SAVE1 / "save1.tar-headers.txt").read_text().splitlines():
        if line.strip().startswith("@"):
            rows.append({k: ast.literal_eval(v) for k, v in re.findall(r"(\w+)=(b'(?:[^'\\]|\\.)*')", line)})
    return rows


def test_outer_headers_are_byte_identical() -> None:
    rows = _real_headers()
    assert len(rows) == 15
    for row in rows:
        name = row["name"].decode()
        ours = ustar_header(name, int(row["size"][:-1], 8), int(row["mtime"][:-1], 8), directory=name.endswith("/"))
        fields = {
            "name": ours[0:100].rstrip(b"\0"), "mode": ours[100:108], "uid": ours[108:116], "gid": ours[116:124],
            "size": ours[124:136], "mtime": ours[136:148], "chk": ours[148:156], "type": ours[156:157],
            "magic": ours[257:263], "ver": ours[263:265], "uname": ours[265:297].rstrip(b"\0"),
            "gname": ours[297:329].rstrip(b"\0"), "devmaj": ours[329:337], "devmin": ours[337:345],
        }
        assert fields == {k: row[k] for k in fields}, name


def test_real_member_order_is_ours() -> None:
    names = [row["name"].decode() for row in _real_headers()]
    assert names == sorted(names, key=lambda n: n.rstrip("/").split("/"))
    assert names[-2:] == ["manifest.json", "repositories"]


# -- exports of a built root ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_root(seed=CANONICAL_SEED)


@pytest.fixture(scope="module")
def exports(canonical: BuiltRoot, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One archive per image of the canonical root."""
    out = tmp_path_factory.mktemp("exports")
    return {
        image.name: export_image(canonical.path, image.name, out / f"{image.name.replace(':', '_')}.tar")
        for image in canonical.truth.images
    }


def _image(plan: Plan, name: str) -> ImagePlan:
    return next(i for i in plan.images if i.recipe.name == name)


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tf:
        return {m.name + ("/" if m.isdir() else ""): (tf.extractfile(m).read() if m.isfile() else b"") for m in tf}


def test_every_image_exports(canonical: BuiltRoot, exports: dict[str, Path]) -> None:
    assert sorted(exports) == sorted(i.name for i in canonical.truth.images)


def test_archive_members_in_docker_order(canonical: BuiltRoot, exports: dict[str, Path]) -> None:
    image = canonical.truth.image("nginx:latest")
    with tarfile.open(exports["nginx:latest"]) as tf:
        names = [m.name + ("/" if m.isdir() else "") for m in tf]
    manifest = json.loads(_members(exports["nginx:latest"])["manifest.json"])[0]
    v1_ids = [layer.removesuffix("/layer.tar") for layer in manifest["Layers"]]
    expected = [f"{image.image_id[7:]}.json", "manifest.json", "repositories"]
    expected += [f"{v}{part}" for v in v1_ids for part in ("/", "/VERSION", "/json", "/layer.tar")]
    assert names == sorted(expected, key=lambda n: n.rstrip("/").split("/"))
    assert len(v1_ids) == len(image.layers)


def test_archive_ends_like_go(exports: dict[str, Path]) -> None:
    raw = exports["redis:7"].read_bytes()
    assert len(raw) % 512 == 0
    assert raw.endswith(b"\0" * 1024) and raw[-1536:-1024] != b"\0" * 512


def test_manifest_config_and_repositories(canonical: BuiltRoot, plan: Plan, exports: dict[str, Path]) -> None:
    image = canonical.truth.image("nginx:latest")
    members = _members(exports["nginx:latest"])
    manifest = json.loads(members["manifest.json"])
    assert members["manifest.json"].endswith(b"]\n")
    assert manifest == [
        {"Config": f"{image.image_id[7:]}.json", "RepoTags": ["nginx:latest"], "Layers": manifest[0]["Layers"]}
    ]
    assert members[f"{image.image_id[7:]}.json"] == _image(plan, "nginx:latest").config_bytes
    top = manifest[0]["Layers"][-1].removesuffix("/layer.tar")
    assert members["repositories"] == b'{"nginx":{"latest":"%s"}}\n' % top.encode()
    assert all(members[f"{layer[:64]}/VERSION"] == b"1.0" for layer in manifest[0]["Layers"])


def test_v1_json_chain(exports: dict[str, Path]) -> None:
    members = _members(exports["nginx:latest"])
    layers = json.loads(members["manifest.json"])[0]["Layers"]
    parent = None
    for layer in layers:
        doc = json.loads(members[f"{layer[:64]}/json"])
        assert doc["id"] == layer[:64] and doc.get("parent") == parent
        parent = doc["id"]


@pytest.mark.parametrize("name", ["debian:bookworm-slim", "nginx:latest", "nginx:alpine", "busybox:latest", "deep:latest"])
def test_layer_tars_are_the_builders(name: str, canonical: BuiltRoot, plan: Plan, exports: dict[str, Path]) -> None:
    members = _members(exports[name])
    layers = json.loads(members["manifest.json"])[0]["Layers"]
    truth = canonical.truth.image(name)
    built = _image(plan, name).layers
    assert len(layers) == len(truth.layers) == len(built)
    for member, lt, lp in zip(layers, truth.layers, built):
        tar = members[member]
        assert "sha256:" + hashlib.sha256(tar).hexdigest() == lt.layer_id
        assert tar == lp.layer.tar


def test_untagged_export_by_id(canonical: BuiltRoot, tmp_path: Path) -> None:
    image = canonical.truth.image("alpine:3.19")
    members = _members(export_image(canonical.path, image.image_id[7:19], tmp_path / "a.tar"))
    assert json.loads(members["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in members


# -- errors --------------------------------------------------------------------------------------


def test_unknown_image(canonical: BuiltRoot, tmp_path: Path) -> None:
    with pytest.raises(UnknownReferenceError):
        export_image(canonical.path, "nosuch:image", tmp_path / "x.tar")
    assert not list(tmp_path.iterdir())


def _a_file_of(root: BuiltRoot, name: str) -> Path:
    diff = root.path / root.truth.image(name).layers[-1].diff_dir
    return next(p for p in sorted(diff.rglob("*")) if p.is_file() and not p.is_symlink() and p.stat().st_size > 8)


def test_tampered_file_is_named(canonical: BuiltRoot, broken_copy: Callable[[BuiltRoot], BuiltRoot], tmp_path: Path) -> None:
    root = broken_copy(canonical)
    victim = _a_file_of(root, "redis:7")
    data = bytearray(victim.read_bytes())
    data[3] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = tmp_path / "out" / "r.tar"
    out.parent.mkdir()
    with pytest.raises(LayerMismatchError) as err:
        export_image(root.path, "redis:7", out)
    assert err.value.path == str(victim)
    assert not list(out.parent.iterdir()), "a failed export must leave nothing behind"


def test_missing_file_is_named(canonical: BuiltRoot, broken_copy: Callable[[BuiltRoot], BuiltRoot], tmp_path: Path) -> None:
    root = broken_copy(canonical)
    victim = _a_file_of(root, "nginx:latest")
    victim.unlink()
    with pytest.raises(MissingEntryError) as err:
        export_image(root.path, "nginx:latest", tmp_path / "n.tar")
    assert err.value.path == str(victim)


def test_existing_output_is_kept(canonical: BuiltRoot, tmp_path: Path) -> None:
    out = tmp_path / "b.tar"
    out.write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        export_image(canonical.path, "busybox:latest", out)
    assert out.read_bytes() == b"mine"
    export_image(canonical.path, "busybox:latest", out, force=True)
    assert tarfile.is_tarfile(out)


# -- pull-log ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nginx:latest", "redis:7", "nginx:alpine", "busybox:latest"])
def test_pull_log(name: str, canonical: BuiltRoot) -> None:
    image = canonical.truth.image(name)
    repo, tag = name.split(":")
    shorts = [layer.compressed_digest[7:19] for layer in image.layers]
    assert pull_log(canonical.path, name) == "\n".join(
        [f"{tag}: Pulling from library/{repo}"]
        + [f"{s}: Pull complete" for s in shorts]
        + [
            f"Digest: {image.manifest_digest}",
            f"Status: Downloaded newer image for {name}",
            f"docker.io/library/{name}",
        ]
    ) + "\n"


def test_pull_log_progress(canonical: BuiltRoot) -> None:
    image = canonical.truth.image("nginx:latest")
    shorts = [layer.compressed_digest[7:19] for layer in image.layers]
    lines = pull_log(canonical.path, "nginx", progress=True).splitlines()
    n = len(shorts)
    assert lines[0] == "latest: Pulling from library/nginx"
    assert lines[1 : 1 + n] == [f"{s}: Pulling fs layer" for s in shorts]
    waiting = [f"{s}: Waiting" for s in shorts[3:]]  # beyond dockerd's 3 concurrent downloads
    w = len(waiting)
    assert lines[1 + n : 1 + n + w] == waiting
    middle = [x for s in shorts for x in (f"{s}: Verifying Checksum", f"{s}: Download complete")]
    assert lines[1 + n + w : 1 + 3 * n + w] == middle
    assert lines[1 + 3 * n + w : 1 + 4 * n + w] == [f"{s}: Pull complete" for s in shorts]
    assert lines[-3:] == [
        f"Digest: {image.manifest_digest}",
        "Status: Downloaded newer image for nginx:latest",
        "docker.io/library/nginx:latest",
    ]


def test_pull_log_by_image_id_uses_its_tag(canonical: BuiltRoot) -> None:
    image = canonical.truth.image("redis:7")
    assert pull_log(canonical.path, image.image_id) == pull_log(canonical.path, "redis:7")


def test_pull_log_of_a_local_image(canonical: BuiltRoot) -> None:
    local = [i for i in canonical.truth.images if i.manifest_digest is None]
    assert local, "the catalogue should have an image that was built, not pulled"
    with pytest.raises(NotPulledError, match="not pulled"):
        pull_log(canonical.path, local[0].name)


# -- command line --------------------------------------------------------------------------------


def test_cli(canonical: BuiltRoot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bb.tar"
    assert main(["export", "busybox", "--root", str(canonical.path), "-o", str(out)]) == 0
    assert tarfile.is_tarfile(out)
    assert main(["export", "busybox", "--root", str(canonical.path), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["pull-log", "busybox", "--root", str(canonical.path)]) == 0
    assert capsys.readouterr().out == pull_log(canonical.path, "busybox")
    assert main(["pull-log", "nosuch", "--root", str(canonical.path)]) == 2
