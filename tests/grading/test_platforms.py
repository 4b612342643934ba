"""Release, Gradescope bundle, Classroom report, seeds, feedback sanitizing, submission intake."""

from __future__ import annotations

import base64
import json
import zipfile

import pytest

from dockerlab.grading import platforms, report, submissions
from dockerlab.grading.grader import derive_seed, hidden_seeds
from dockerlab.labinfo import repo_root
from fakeroot_builder.errors import DockerLabError

REPO = repo_root()


def test_release_has_stubs_tests_builder_and_workflow_but_no_solutions(tmp_path):
    out = platforms.release(tmp_path / "student")
    for rel in ("labs/lab1/layerdb.py", "tests/test_lab1.py", "tests/conftest.py", "fakeroot_builder/build.py",
                "dockerlab/grading/grader.py", "tox.ini", "pyproject.toml", "README.md", ".github/workflows/classroom.yml"):
        assert (out / rel).is_file(), rel
    assert not list(out.rglob("solutions*")) and not (out / "tests" / "grading").exists()
    assert (out / "labs/lab1/layerdb.py").read_text() == (REPO / "labs/lab1/layerdb.py").read_text()
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((out / ".github/workflows/classroom.yml").read_text())
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    assert any("dockerlab grade" in s.get("run", "") for s in steps)
    assert workflow["jobs"]["run-autograding-tests"]["name"] == "Autograding Tests"


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DockerLabError, match="not empty"):
        platforms.release(tmp_path)


def test_gradescope_bundle_has_the_grader_without_solutions(tmp_path):
    zip_path = platforms.gradescope_bundle(tmp_path / "ag.zip", secret="s3")
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", "tests/test_lab1.py", "dockerlab/grading/grader.py", ".dockerlab-secret"} <= names
        assert not any(n.startswith("solutions/") or "/grading/test_" in n for n in names)
        assert zf.getinfo("run_autograder").external_attr >> 16 & 0o111
        assert "/autograder/results/results.json" in zf.read("run_autograder").decode()
    assert ".dockerlab-secret" not in zipfile.ZipFile(platforms.gradescope_bundle(tmp_path / "b.zip")).namelist()


def test_classroom_result_is_the_reporters_base64_json(tmp_path):
    results = {"score": 15, "tests": [
        {"name": "a", "score": 15, "max_score": 15, "status": "passed", "output": "", "visibility": "visible"},
        {"name": "b", "score": 0, "max_score": 20, "status": "failed", "output": "x", "visibility": "visible"}]}
    (tmp_path / "r.json").write_text(json.dumps(results))
    data = json.loads(base64.b64decode(platforms.classroom_result(tmp_path / "r.json")))
    assert data["max_score"] == 35 and data["status"] == "fail"
    assert [t["status"] for t in data["tests"]] == ["pass", "fail"]


def test_hidden_seeds_are_per_student_secret_and_stable():
    assert derive_seed("k", "alice", 0) == derive_seed("k", "alice", 0)
    assert len({derive_seed("k", "alice", 0), derive_seed("k", "bob", 0), derive_seed("j", "alice", 0)}) == 3
    seeds = hidden_seeds("k", "alice", 2)
    assert seeds[0] == 2023 and all(s >= 10_000_000 for s in seeds[1:]) and len(seeds) == 3


def test_sanitize_drops_expected_and_shortens_ids():
    digest = "sha256:" + "ab" * 32
    text = report.sanitize(f"Task 1: wrong answer\n  call:     f(<root seed=123456>)\n  got:      'x'\n"
                           f"  expected: '{digest}'\n  hint: read it")
    assert "expected" not in text and digest not in text and "123456" not in text and "hint" not in text
    assert report.sanitize(f"got {digest}") == "got sha256:abababababab…"


def test_a_zip_gives_only_its_labs_python_files(tmp_path):
    with zipfile.ZipFile(tmp_path / "carol.zip", "w") as zf:
        zf.writestr("repo-main/labs/lab1/layerdb.py", "X = 1\n")
        zf.writestr("repo-main/labs/conftest.py", "raise SystemExit\n")
        zf.writestr("repo-main/labs/../../evil.py", "nope\n")
        zf.writestr("repo-main/tests/conftest.py", "nope\n")
    (tmp_path / "dave" / "labs").mkdir(parents=True)
    (tmp_path / "dave" / "labs" / "link.py").symlink_to(REPO / "solutions" / "lab1" / "layerdb.py")
    subs = {s.student: s for s in submissions.collect(tmp_path)}
    assert set(subs) == {"carol", "dave"}
    staged = submissions.stage(subs["carol"], tmp_path / "stage-carol")
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.py")) == ["labs/lab1/layerdb.py"]
    staged = submissions.stage(subs["dave"], tmp_path / "stage-dave")
    assert not list(staged.rglob("*.py"))
    assert not (tmp_path.parent / "evil.py").exists()


def test_sandbox_impl_runs_the_graded_harness(tmp_path):
    """``--impl sandbox:<dir>``: the same functions, answered by a worker, errors rebuilt by name."""
    from dockerlab.impl import MissingFunction, load
    from fakeroot_builder.errors import UnknownReferenceError

    import shutil

    shutil.copytree(REPO / "solutions", tmp_path / "sub" / "labs")
    lab1 = load("lab1", f"sandbox:{tmp_path / 'sub'}")
    try:
        ids = ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
        assert lab1.chain_ids(ids)[0] == ids[0]
        with pytest.raises(UnknownReferenceError):
            lab1.resolve_image(str(tmp_path), "nope")
        with pytest.raises(MissingFunction):
            lab1.no_such_function()
    finally:
        lab1.close()


SLOW = '''

def _slow(function):
    import functools
    import time

    @functools.wraps(function)
    def slow(*args, **kwargs):
        time.sleep(0.9)
        return function(*args, **kwargs)
    return slow


for _name, _value in list(globals().items()):
    if callable(_value) and getattr(_value, "__module__", "") == __name__ and not _name.startswith("_"):
        globals()[_name] = _slow(_value)
'''


def test_each_lab_has_its_own_time_budget(tmp_path):
    """A lab 1 that runs out of its budget costs lab 1 only: a correct lab 2 keeps its points."""
    import shutil

    from dockerlab.grading.grader import Timeouts, grade_class
    from dockerlab.labinfo import lab

    labs = tmp_path / "class" / "slow" / "labs"
    shutil.copytree(REPO / "solutions", labs, ignore=shutil.ignore_patterns("__pycache__"))
    (labs / "lab1" / "layerdb.py").write_text((REPO / "solutions/lab1/layerdb.py").read_text() + SLOW)
    [result] = grade_class(tmp_path / "class", tmp_path / "out", "s", ["lab1", "lab2"], jobs=1,
                           timeouts=Timeouts(test=1, submission=15), progress=False)
    by_lab = {lab_id: sum(t.score for t in result.tasks if t.task.lab == lab_id) for lab_id in ("lab1", "lab2")}
    assert by_lab["lab2"] == lab("lab2").points, result.note
    assert by_lab["lab1"] < lab("lab1").points
    assert "lab1 ran out of time" in result.note and "lab2" not in result.note
