"""The ``dockerlab`` command (``python -m fakeroot_builder``): build, inspect, hint, student-id.

Most tests call ``dockerlab.cli.main`` in-process (fast); one runs the module as a subprocess.
Errors must be one line on stderr and exit status 2, never a traceback, never a half-written tree.
"""

from __future__ import annotations

import hashlib
import json
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fakeroot_builder.build  # imported before any test patches writer.write_plan  # noqa: F401
import fakeroot_builder.safety
import fakeroot_builder.writer
from dockerlab.cli import main
from fakeroot_builder.catalogue import IMAGES
from fakeroot_builder.errors import LiveDockerRootError
from fakeroot_builder.safety import check_target

REPO = Path(__file__).resolve().parent.parent
SMALL = "busybox"  # one image, one layer, no container: the cheapest build


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repositories(root: Path) -> dict:
    return json.loads((root / "image/overlay2/repositories.json").read_bytes())["Repositories"]


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".building-" in p.name]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("DOCKERLAB_REPO", raising=False)


@pytest.fixture
def no_writes(monkeypatch):
    """Fail the test if the build gets as far as writing anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("the build started writing")

    monkeypatch.setattr(fakeroot_builder.safety, "write_atomically", refuse)
    monkeypatch.setattr(fakeroot_builder.writer, "write_plan", refuse)


# -- build ---------------------------------------------------------------------------------------


def test_build_into_an_absent_dir_writes_a_root_and_prints_a_summary(tmp_path):
    out = tmp_path / "fresh"
    proc = subprocess.run(
        [sys.executable, "-m", "fakeroot_builder", "build", "--out", str(out), "--images", SMALL],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DOCKERLAB_REPO": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and "1 images" in proc.stdout
    assert (out / "image/overlay2/layerdb/sha256").is_dir()
    assert list(repositories(out)) == ["busybox"]
    assert leftovers(tmp_path) == []


def test_build_refuses_a_non_empty_dir_without_force_and_leaves_it_alone(tmp_path, capsys, no_writes):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["build", "--out", str(out), "--images", SMALL]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_force_never_replaces_a_directory_the_builder_did_not_make(tmp_path, capsys):
    out = tmp_path / "busy"
    (out / "precious").mkdir(parents=True)
    (out / "precious" / "thesis.txt").write_text("mine")
    assert main(["build", "--out", str(out), "--images", SMALL, "--force"]) == 2
    assert "only a root made by `dockerlab build`" in capsys.readouterr().err
    assert (out / "precious" / "thesis.txt").read_text() == "mine"
    assert leftovers(tmp_path) == []


def test_force_never_writes_in_or_around_a_real_docker_root(tmp_path, capsys):
    for target in ("/var/lib", "/var/lib/docker/overlay2"):
        assert main(["build", "--out", target, "--force", "--images", SMALL]) == 2
        assert "real Docker data root" in capsys.readouterr().err


def test_rebuild_with_force_over_a_previous_root_leaves_no_staging_dir(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", SMALL]) == 0
    assert main(["build", "--out", str(out), "--images", "alpine:3.19", "--force"]) == 0
    assert list(repositories(out)) == ["alpine"]
    assert leftovers(tmp_path) == [], "the replaced root was left beside the new one"


def test_build_refuses_var_lib_docker(capsys, no_writes):
    existed = os.path.exists("/var/lib/docker")
    with pytest.raises(LiveDockerRootError):
        check_target(Path("/var/lib/docker"), force=True)
    assert main(["build", "--out", "/var/lib/docker", "--force"]) == 2
    err = capsys.readouterr().err
    assert "/var/lib/docker" in err and "Traceback" not in err
    assert os.path.exists("/var/lib/docker") == existed


def test_build_refuses_a_dir_holding_engine_id_even_with_force(tmp_path, capsys, no_writes):
    out = tmp_path / "daemon-root"
    out.mkdir()
    (out / "engine-id").write_text("4f6c0d6e-real-daemon")
    with pytest.raises(LiveDockerRootError):
        check_target(out, force=True)
    assert main(["build", "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "engine-id" in err
    assert [p.name for p in out.iterdir()] == ["engine-id"]


def interrupt_after_writing(monkeypatch):
    real = fakeroot_builder.writer.write_plan

    def write_then_die(plan, target):
        real(plan, target)  # everything is on disk in the staging dir, the rename never happens
        raise RuntimeError("disk full")

    monkeypatch.setattr(fakeroot_builder.writer, "write_plan", write_then_die)


def test_an_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    interrupt_after_writing(monkeypatch)
    out = tmp_path / "root"
    with pytest.raises(RuntimeError, match="disk full"):
        main(["build", "--out", str(out), "--images", "alpine:3.19"])  # alpine has a container: 0000 dirs
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_an_interrupted_forced_build_keeps_the_old_tree(tmp_path, monkeypatch):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", SMALL]) == 0
    before = sorted(p.name for p in out.iterdir())
    interrupt_after_writing(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["build", "--out", str(out), "--images", "alpine:3.19", "--force"])
    assert sorted(p.name for p in out.iterdir()) == before
    assert list(repositories(out)) == ["busybox"]
    assert leftovers(tmp_path) == []


def test_clean_removes_a_built_root_and_nothing_else(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", SMALL]) == 0
    assert main(["clean", str(out)]) == 0 and not out.exists()
    (tmp_path / "mine").mkdir()
    assert main(["clean", str(tmp_path / "mine")]) == 2 and (tmp_path / "mine").is_dir()


def test_bad_build_arguments_fail_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", ","]) == 2
    assert main(["build", "--out", str(out), "--truth", str(tmp_path / "no" / "t.json")]) == 2
    assert not out.exists()


def test_build_truth_file_has_the_image_ids_of_the_configs_on_disk(tmp_path, capsys):
    out, truth_file = tmp_path / "root", tmp_path / "truth.json"
    assert main(["build", "--out", str(out), "--images", "nginx,busybox", "--truth", str(truth_file)]) == 0
    truth = json.loads(truth_file.read_text())
    content = out / "image/overlay2/imagedb/content/sha256"
    on_disk = {sha256(p.read_bytes()) for p in content.iterdir()}
    assert {p.name for p in content.iterdir()} == {i[7:] for i in on_disk}
    assert {image["image_id"] for image in truth["images"]} == on_disk
    for image in truth["images"]:
        for layer in image["layers"]:
            assert (out / layer["diff_dir"]).is_dir()


def test_build_images_builds_only_those(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", "nginx,busybox"]) == 0
    assert sorted(repositories(out)) == ["busybox", "nginx"]
    ids = {sha256(p.read_bytes()) for p in (out / "image/overlay2/imagedb/content/sha256").iterdir()}
    assert ids == {i for refs in repositories(out).values() for i in refs.values()}
    assert "2 images" in capsys.readouterr().out


def test_build_of_an_unknown_image_names_it_and_lists_the_catalogue(tmp_path, capsys):
    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", "nginx,no-such-image"]) == 2
    err = capsys.readouterr().err
    assert "no-such-image" in err and "Traceback" not in err
    for recipe in IMAGES:
        assert recipe.name in err
    assert not out.exists() and leftovers(tmp_path) == []


# -- inspect -------------------------------------------------------------------------------------


def test_inspect_prints_one_row_per_layer_with_its_cache_dir(canonical, capsys):
    assert main(["inspect", "nginx", "--root", str(canonical.path)]) == 0
    out = capsys.readouterr().out
    image = canonical.truth.image("nginx:latest")
    config = (canonical.path / "image/overlay2/imagedb/content/sha256" / image.image_id[7:]).read_bytes()
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s+[0-9a-f]{12}\s", line)]
    assert len(rows) == len(diff_ids) == 7
    for row, diff_id in zip(rows, diff_ids):
        assert diff_id[7:19] in row
    for layer in image.layers:
        assert os.path.join(str(canonical.path), "overlay2", layer.cache_id, "diff") in out
        assert f"l/{layer.link}" in out
    assert image.image_id in out


def test_inspect_json_has_the_documented_shape_and_the_truth_values(canonical, capsys):
    assert main(["inspect", "nginx:latest", "--root", str(canonical.path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    image = canonical.truth.image("nginx:latest")
    assert set(got) == {"store", "image_id", "repo_tags", "layers"} and got["store"] == "classic"
    assert got["image_id"] == image.image_id
    assert sorted(got["repo_tags"]) == sorted(image.repo_tags)
    expected = [
        {
            "layer_id": layer.layer_id,
            "db_id": layer.db_id,
            "cache_id": layer.cache_id,
            "parent": layer.parent,
            "size": layer.size,
            "link": layer.link,
            "diff_dir": os.path.join(str(canonical.path), layer.diff_dir),
        }
        for layer in image.layers
    ]
    assert got["layers"] == expected


def test_inspect_of_a_dir_that_is_not_a_docker_root_is_a_clear_error(tmp_path, capsys):
    assert main(["inspect", "nginx", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "image/overlay2" in err and "Traceback" not in err


def test_inspect_of_an_unknown_image_is_a_clear_error(canonical, capsys):
    assert main(["inspect", "no-such-image", "--root", str(canonical.path)]) == 2
    assert "no-such-image" in capsys.readouterr().err


def test_inspect_with_unfinished_lab_stubs_is_a_clear_error_not_a_traceback(canonical, tmp_path, capsys):
    shutil.copytree(REPO / "labs", tmp_path / "labs")  # the student's untouched stubs
    try:
        status = main(["inspect", "nginx", "--root", str(canonical.path), "--impl", str(tmp_path)])
    except Exception as exc:  # what a student would see as a traceback
        pytest.fail(f"dockerlab inspect --impl <stubs> crashed with {type(exc).__name__}: {exc}")
    assert status == 2
    err = capsys.readouterr().err
    assert "resolve_image" in err and "Traceback" not in err


# -- hint and student-id -------------------------------------------------------------------------


def test_hint_prints_the_task_hint_from_info_toml(capsys):
    from dockerlab.labinfo import tomllib  # tomli on Python 3.10

    with open(REPO / "labs/info.toml", "rb") as fh:
        info = tomllib.load(fh)
    lab1 = next(lab for lab in info["labs"] if lab["id"] == "lab1")
    task = next(t for t in lab1["tasks"] if t["number"] == 3)
    assert main(["hint", "lab1", "3"]) == 0
    out = capsys.readouterr().out
    assert task["title"] in out
    assert " ".join(task["hint"].split()) in " ".join(out.split())


def test_hint_for_a_task_that_does_not_exist_exits_2(capsys):
    assert main(["hint", "lab1", "9"]) == 2
    err = capsys.readouterr().err
    assert "9" in err and "Traceback" not in err


@pytest.fixture
def course_copy(tmp_path, monkeypatch) -> Path:
    repo = tmp_path / "course"
    (repo / "labs").mkdir(parents=True)
    shutil.copy(REPO / "labs/info.toml", repo / "labs/info.toml")
    monkeypatch.setenv("DOCKERLAB_REPO", str(repo))
    return repo


def test_student_id_writes_the_marker_file_and_shows_it(course_copy, capsys):
    real_marker = REPO / ".dockerlab-student"
    before = real_marker.read_bytes() if real_marker.exists() else None
    assert main(["student-id", "s1234567"]) == 0
    assert (course_copy / ".dockerlab-student").read_text().strip() == "s1234567"
    capsys.readouterr()
    assert main(["student-id"]) == 0
    assert capsys.readouterr().out.strip() == "s1234567"
    assert (real_marker.read_bytes() if real_marker.exists() else None) == before


def test_student_id_with_spaces_is_refused(course_copy, capsys):
    assert main(["student-id", "two words"]) == 2
    assert "two words" in capsys.readouterr().err
    assert not (course_copy / ".dockerlab-student").exists()


def test_a_missing_package_is_one_line_naming_the_install_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    """`dockerlab grade` without pytest installed: no traceback, no grades.csv without rows."""
    import importlib.util

    from dockerlab import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest" else real(name, *a))
    (tmp_path / "class" / "alice" / "labs").mkdir(parents=True)
    out = tmp_path / "grades"
    monkeypatch.setenv("DOCKERLAB_SECRET", "s")
    code = cli.main(["grade", str(tmp_path / "class"), "--out", str(out), "--labs", "lab1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "'pytest' is not installed" in err and cli.INSTALL in err


def test_clean_finishes_what_rm_rf_left_as_a_user_and_refuses_look_alikes(tmp_path, capsys):
    """As a user `rm -rf` stops at each mounted layer's work/work (mode 0000); clean removes the rest."""
    import stat as st

    out = tmp_path / "root"
    assert main(["build", "--out", str(out), "--images", "nginx:latest,alpine:3.19"]) == 0
    locked = [p for p in out.glob("overlay2/*/work/work") if st.S_IMODE(p.lstat().st_mode) == 0]
    assert locked
    keep = {a for p in locked for a in [p, *p.parents]}
    for dirpath, dirnames, filenames in os.walk(out, topdown=False):  # what rm -rf removes as a user
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            if p in keep:
                continue
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o700)
                if not any(p.iterdir()):
                    p.rmdir()
            else:
                p.unlink()
    assert sorted(p.name for p in out.iterdir()) == ["overlay2"]
    assert main(["clean", str(out)]) == 0 and not out.exists()

    fake = tmp_path / "fake"
    (fake / "overlay2" / "photos").mkdir(parents=True)
    assert main(["clean", str(fake)]) == 2 and (fake / "overlay2" / "photos").is_dir()


def test_the_install_a_missing_package_names_is_the_readme_s():
    from dockerlab import cli

    assert cli.INSTALL in (REPO / "README.md").read_text()


def test_a_command_module_missing_a_package_is_one_line_too(monkeypatch, capsys):
    """A command whose module imports a package that is not installed: one line, no traceback."""
    from dockerlab import cli

    real = importlib.import_module

    def fake(name, *args):
        if name == cli._COMMAND_MODULES[0]:
            raise ModuleNotFoundError("No module named '_pytest'", name="_pytest")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert cli.main(["grade", "class"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'pytest' is not installed" in err and cli.INSTALL in err
