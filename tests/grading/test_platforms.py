"""The platforms: release, Classroom workflow and reporter, Gradescope bundle, upload shapes; seeds,
feedback sanitizing, submission intake, per-lab time budgets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from platform_checks import gradescope_problems, replay_classroom, reporter_totals

from dockerlab.grading import platforms, report, submissions
from dockerlab.grading.grader import derive_seed, hidden_seeds
from dockerlab.labinfo import lab as lab_info
from dockerlab.labinfo import labs, repo_root
from fakeroot_builder.errors import DockerLabError

REPO = repo_root()
LABS = labs()


def test_release_has_stubs_tests_builder_and_workflow_but_no_solutions(tmp_path):
    out = platforms.release(tmp_path / "student")
    for rel in ("labs/lab1/layerdb.py", "labs/info.toml", "tests/conftest.py", "fakeroot_builder/build.py",
                "dockerlab/grading/grader.py", "dockerlab/templates/classroom.yml", "tox.ini", "pyproject.toml",
                "README.md", ".github/workflows/classroom.yml", ".gitignore"):
        assert (out / rel).is_file(), rel
    for lab in LABS:
        assert (out / "tests" / f"test_{lab.id}.py").is_file()
        assert (out / "labs" / lab.module).read_text() == (REPO / "labs" / lab.module).read_text()
    assert not list(out.rglob("solutions*")) and not list(out.rglob(platforms.SECRET_FILE))
    assert sorted(p.name for p in (out / "tests").iterdir()) == sorted(
        ["conftest.py", *(f"test_{lab.id}.py" for lab in LABS)]
        + [p.name for p in (REPO / "tests").glob("*.py") if not p.name.startswith("test_") and p.name != "conftest.py"])


def test_student_tox_ini_has_one_env_per_lab_and_no_maintainer_env(tmp_path):
    import configparser

    out = platforms.release(tmp_path / "student")
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(out / "tox.ini")
    envs = {e for s in tox.sections() if s.startswith("testenv:") for e in platforms._env_names(s.split(":", 1)[1])}
    assert {lab.id for lab in LABS} <= envs and not envs & {"py", "solutions", "conformance", "bench"}
    assert [e.strip() for e in tox["tox"]["env_list"].split(",")] == [lab.id for lab in LABS]
    commands = " ".join(tox[s].get("commands", "") for s in tox.sections())
    assert "--impl labs" in commands and "solutions" not in commands


def test_tox_generative_env_names_expand():
    assert platforms._env_names("lab{1,2,3}") == {"lab1", "lab2", "lab3"}
    assert platforms._env_names("lab1") == {"lab1"}
    assert platforms._env_names("{a,b}-{x,y}") == {"a-x", "a-y", "b-x", "b-y"}


def test_released_gitignore_ignores_environments_and_saved_progress(tmp_path):
    """``git add -A`` in the student's repository takes their work, not their venv or progress."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    out = platforms.release(tmp_path / "student")
    course = [line.rstrip("/") for line in (REPO / ".gitignore").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "/", "!")) and "*" not in line]
    junk = [".venv/bin/python", ".tox/lab1/log", "labs/lab1/__pycache__/x.pyc", ".pytest_cache/v/x",
            *(f"{name}/x" for name in course), *course]
    for rel in junk:
        if not (out / rel).parent.is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            if not (out / rel).exists():
                (out / rel).write_text("x")
    subprocess.run([git, "init", "-q", str(out)], check=True)
    added = subprocess.run([git, "-C", str(out), "add", "-A", "--dry-run"], capture_output=True, text=True,
                           check=True).stdout
    assert "labs/lab1/layerdb.py" in added and "tests/test_lab1.py" in added
    leaked = [line for line in added.splitlines()
              if any(f"'{j.split('/')[0]}" in line for j in junk if not j.startswith("labs/"))
              or "__pycache__" in line]
    assert leaked == []


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DockerLabError, match="not empty"):
        platforms.release(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_workflow_triggers_and_runners_are_classrooms(tmp_path):
    yaml = pytest.importorskip("yaml")
    out = platforms.release(tmp_path / "student")
    workflow = yaml.safe_load((out / ".github/workflows/classroom.yml").read_text())
    assert workflow["on"] == {"push": None, "workflow_dispatch": None, "repository_dispatch": None}
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    [(name, job)] = workflow["jobs"].items()
    assert name == "run-autograding-tests" and job["if"] == "github.actor != 'github-classroom[bot]'"
    [reporter] = [s for s in job["steps"] if s.get("uses", "").startswith("classroom-resources/autograding-grading-reporter@")]
    runners = reporter["with"]["runners"].split(",")
    assert runners == [platforms.runner_id(t.key) for lab in LABS for t in lab.tasks]
    assert all(re.fullmatch(r"[a-zA-Z0-9]+", r) for r in runners)  # the reporter's own pattern
    assert reporter["env"] == {f"{r.upper()}_RESULTS": f"${{{{ steps.dockerlab.outputs.{r} }}}}" for r in runners}
    assert any(s.get("id") == "dockerlab" and "--labs " + ",".join(lab.id for lab in LABS) in s["run"] for s in job["steps"])


def test_release_labs_choose_what_the_workflow_grades(tmp_path):
    yaml = pytest.importorskip("yaml")
    out = platforms.release(tmp_path / "student", ["lab1"])
    workflow = yaml.safe_load((out / ".github/workflows/classroom.yml").read_text())
    [reporter] = [s for s in workflow["jobs"]["run-autograding-tests"]["steps"] if "with" in s and "runners" in s["with"]]
    assert reporter["with"]["runners"].split(",") == [platforms.runner_id(t.key) for t in lab_info("lab1").tasks]
    assert (out / "labs/lab2").is_dir()  # every lab's stubs still ship
    with pytest.raises(DockerLabError, match="no lab 'lab9'"):
        platforms.release(tmp_path / "other", ["lab9"])


@pytest.mark.parametrize("passed", ["all", "half", "none"])
def test_classroom_payloads_agree_in_the_reporters_table_and_points(passed):
    keys = [t.key for lab in LABS for t in lab.tasks]
    chosen = {"all": set(keys), "none": set(), "half": {t.key for t in LABS[0].tasks}}[passed]
    payloads = platforms.classroom_payloads(LABS, {k: (k in chosen, "feedback ✓") for k in keys})
    runners = ",".join(payloads)
    totals = reporter_totals(runners, {f"{r.upper()}_RESULTS": v for r, v in payloads.items()})
    expected = sum(t.points for lab in LABS for t in lab.tasks if t.key in chosen)
    assert totals["points"] == totals["table"] == expected
    assert totals["max_points"] == totals["table_max"] == sum(lab.points for lab in LABS)
    assert totals["statuses"].count("pass") == len(chosen)


def test_a_missing_payload_is_what_broke_the_reporter():
    with pytest.raises(ValueError, match="Unexpected end of JSON input"):
        reporter_totals("lab1task1", {"LAB1TASK1_RESULTS": ""})


def test_gradescope_bundle_has_the_grader_and_a_private_secret_but_no_maintainer_tests(tmp_path):
    zip_path = platforms.gradescope_bundle(tmp_path / "ag.zip", "s3", ["lab1"])
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", "README.md", "pyproject.toml", "tests/conftest.py", "tests/test_lab1.py",
                "dockerlab/grading/grader.py", platforms.BUNDLE_CONFIG, platforms.SECRET_FILE} <= names
        assert not any(n.startswith("solutions/") or n.startswith("tests/grading/") or n.startswith("tests/conformance/")
                       for n in names)
        assert {n for n in names if re.fullmatch(r"tests/test_.*\.py", n)} == {"tests/test_lab1.py"}
        assert zf.getinfo("run_autograder").external_attr >> 16 & 0o111
        assert zf.getinfo("setup.sh").external_attr >> 16 & 0o111
        assert zf.getinfo(platforms.SECRET_FILE).external_attr >> 16 & 0o077 == 0
        assert zf.read(platforms.SECRET_FILE).decode().strip() == "s3"
        assert json.loads(zf.read(platforms.BUNDLE_CONFIG))["labs"] == ["lab1"]
    with pytest.raises(DockerLabError, match="exists"):
        platforms.gradescope_bundle(zip_path, "s3")
    with pytest.raises(DockerLabError, match="no lab"):
        platforms.gradescope_bundle(tmp_path / "x.zip", "s3", ["lab9"])


def test_bundle_secret_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKERLAB_SECRET", raising=False)
    secret, origin = platforms.bundle_secret(tmp_path / "ag.zip", None)
    saved = tmp_path / "ag.secret"
    assert "generated" in origin and saved.read_text().strip() == secret and len(secret) >= 40
    assert saved.stat().st_mode & 0o077 == 0
    assert platforms.bundle_secret(tmp_path / "ag.zip", None) == (secret, f"reused from {saved}")
    monkeypatch.setenv("DOCKERLAB_SECRET", "from-env")
    assert platforms.bundle_secret(tmp_path / "ag.zip", None)[0] == "from-env"
    assert platforms.bundle_secret(tmp_path / "ag.zip", "given")[0] == "given"


def test_the_default_bundle_command_bakes_a_secret_and_warns(tmp_path, monkeypatch, capsys):
    from dockerlab.cli import main

    monkeypatch.delenv("DOCKERLAB_SECRET", raising=False)
    assert main(["gradescope-bundle", "--out", str(tmp_path / "ag.zip"), "--labs", "lab1"]) == 0
    captured = capsys.readouterr()
    assert "keep the zip private" in captured.err and f"{lab_info('lab1').points} points" in captured.out
    with zipfile.ZipFile(tmp_path / "ag.zip") as zf:
        assert zf.read(platforms.SECRET_FILE).decode().strip() == (tmp_path / "ag.secret").read_text().strip()
    assert main(["gradescope-bundle", "--out", str(tmp_path / "ag.zip")]) == 2  # exists: refused
    assert main(["gradescope-bundle", "--out", str(tmp_path / "ag.zip"), "--force"]) == 0


def _upload(tmp_path: Path, shape: str) -> Path:
    """A perfect submission in one of the shapes students upload."""
    up = tmp_path / shape
    solutions = {lab.module: (REPO / "solutions" / lab.module).read_text() for lab in LABS}
    layout = {
        "repository": {**{f"labs/{m}": t for m, t in solutions.items()}, "tox.ini": "", "tests/test_lab1.py": "x"},
        "labs-folder": {f"labs/{m}": t for m, t in solutions.items()},
        "labs-contents": dict(solutions),
        "loose-files": {Path(m).name: t for m, t in solutions.items()},
        "download-zip": {f"dockerlab-student-main/labs/{m}": t for m, t in solutions.items()}
                        | {"dockerlab-student-main/README.md": "x"},
    }[shape]
    for rel, text in layout.items():
        (up / rel).parent.mkdir(parents=True, exist_ok=True)
        (up / rel).write_text(text)
    return up


SHAPES = ["repository", "labs-folder", "labs-contents", "loose-files", "download-zip"]
SHAPE_WORDS = {"repository": "a whole repository", "labs-folder": "a labs/ folder", "labs-contents": "contents of labs/",
               "loose-files": "loose module files", "download-zip": "Download ZIP"}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_upload_shape_finds_every_lab(tmp_path, shape):
    found = platforms.stage_upload(_upload(tmp_path, shape), tmp_path / "staged", LABS)
    assert not found.missing and sorted(found.files) == sorted(lab.module for lab in LABS)
    for lab in LABS:
        assert (tmp_path / "staged" / lab.module).read_text() == (REPO / "solutions" / lab.module).read_text()
    assert SHAPE_WORDS[shape] in found.describe()


def test_a_zip_upload_and_an_empty_one(tmp_path):
    up = tmp_path / "up"
    up.mkdir()
    with zipfile.ZipFile(up / "mine.zip", "w") as zf:
        for lab in LABS:
            zf.writestr(f"repo-main/labs/{lab.module}", (REPO / "solutions" / lab.module).read_text())
        zf.writestr("../evil.py", "x")
    found = platforms.stage_upload(up, tmp_path / "staged", LABS)
    assert not found.missing and "inside mine.zip" in found.describe()
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "staged" / "evil.py").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    found = platforms.stage_upload(tmp_path / "empty", tmp_path / "staged2", LABS)
    assert not found.files and sorted(found.missing) == sorted(lab.module for lab in LABS)


def test_the_students_labs_win_over_solutions_and_links(tmp_path):
    up = tmp_path / "up"
    for lab in LABS:
        for top in ("labs", "solutions"):
            (up / top / lab.module).parent.mkdir(parents=True, exist_ok=True)
        (up / "labs" / lab.module).write_text("# mine\n")
        (up / "solutions" / lab.module).write_text("# reference\n")
    first = LABS[0]
    (up / "labs" / first.module).unlink()
    (up / "labs" / first.module).symlink_to(up / "solutions" / first.module)
    found = platforms.stage_upload(up, tmp_path / "staged", LABS)
    assert first.module in found.missing
    for lab in LABS[1:]:
        assert (tmp_path / "staged" / lab.module).read_text() == "# mine\n"
    assert not (tmp_path / "staged" / first.module).exists()


def test_a_deep_upload_is_walked_within_bounds(tmp_path):
    deep = tmp_path / "up"
    path = deep
    for _ in range(60):
        path = path / "d"
    path.mkdir(parents=True)
    (path / Path(LABS[0].module).name).write_text("x")
    found = platforms.locate_labs(deep, LABS)
    assert not found.files  # far below any shape a student uploads: not taken


def _gradescope_root(tmp_path: Path, shape: str, labs: list[str] | None = None) -> Path:
    """A simulated /autograder: the bundle unpacked in source/, an upload in submission/."""
    root = tmp_path / "autograder"
    zip_path = platforms.gradescope_bundle(tmp_path / "ag.zip", "gs-secret", labs, lab_timeout=120)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.move(str(_upload(tmp_path, shape)), root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"id": 4242, "name": "S", "email": "s@x"}]}))
    return root


def test_gradescope_run_grades_loose_files_from_the_unpacked_bundle(tmp_path):
    """run_autograder's body, with the course code of the unpacked zip (not this checkout)."""
    root = _gradescope_root(tmp_path, "loose-files")
    env = {**os.environ, "DOCKERLAB_REPO": str(root / "source"), "PYTHONPATH": str(root / "source")}
    env.pop("DOCKERLAB_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "dockerlab.grading.platforms", "gradescope", "--root", str(root)],
                          cwd=root / "source", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert gradescope_problems(data, sum(lab.points for lab in LABS)) == []
    assert data["score"] == sum(lab.points for lab in LABS), data
    assert "loose module files" in data["output"] and "layerdb.py → labs/lab1/layerdb.py" in data["output"]
    assert "grading mode" in done.stdout


def test_gradescope_run_always_writes_results(tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    assert platforms.run_gradescope(root) == 0  # no bundle in source/: the autograder is broken
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 0 and "tell your instructor" in data["output"].lower()
    assert gradescope_problems(data) == []


def test_gradescope_contract_checker_can_fail():
    assert gradescope_problems({"tests": [{"score": 3, "max_score": 2, "status": "ok"}]})
    assert gradescope_problems({"score": 1, "tests": [{"score": 0, "max_score": 2}]})
    assert gradescope_problems({"score": float("nan")})
    assert gradescope_problems({"score": 0, "visibility": "public"})


@pytest.mark.parametrize("kind", ["perfect", "half", "blank"])
def test_classroom_replay_reports_the_points_through_the_reporters_decoding(tmp_path, kind):
    """The released workflow's steps, replayed (its install step aside), decoded as the reporter does."""
    pytest.importorskip("yaml")
    repo = platforms.release(tmp_path / "student", [lab.id for lab in LABS[:2]])
    solved = {"perfect": LABS[:2], "half": LABS[:1], "blank": ()}[kind]
    for lab in solved:
        shutil.copyfile(REPO / "solutions" / lab.module, repo / "labs" / lab.module)
    given = replay_classroom(repo, skip=("Install",))
    totals = reporter_totals(given["runners"], given["env"])
    expected = sum(lab.points for lab in solved)
    assert totals["table"] == totals["points"] == expected, given["log"]
    assert totals["max_points"] == sum(lab.points for lab in LABS[:2])
    assert "grading mode" in given["log"]


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


HANG = '''

def _slow(function):
    import functools
    import time

    @functools.wraps(function)
    def slow(*args, **kwargs):
        time.sleep(3600)  # a hang: only the lab's own budget ends it
        return function(*args, **kwargs)
    return slow


for _name, _value in list(globals().items()):
    if callable(_value) and getattr(_value, "__module__", "") == __name__ and not _name.startswith("_"):
        globals()[_name] = _slow(_value)
'''


def test_each_lab_has_its_own_time_budget(tmp_path):
    """A lab 1 that runs out of its budget costs lab 1 only: a correct lab 2 keeps its points."""
    from dockerlab.grading.grader import Timeouts, grade_class

    labs = tmp_path / "class" / "slow" / "labs"
    shutil.copytree(REPO / "solutions", labs, ignore=shutil.ignore_patterns("__pycache__"))
    (labs / "lab1" / "layerdb.py").write_text((REPO / "solutions/lab1/layerdb.py").read_text() + HANG)
    [result] = grade_class(tmp_path / "class", tmp_path / "out", "s", ["lab1", "lab2"], jobs=1,
                           timeouts=Timeouts(test=600, submission=30), progress=False)
    by_lab = {lab_id: sum(t.score for t in result.tasks if t.task.lab == lab_id) for lab_id in ("lab1", "lab2")}
    assert by_lab["lab2"] == lab_info("lab2").points, result.note
    assert by_lab["lab1"] < lab_info("lab1").points
    assert "lab1 ran out of time" in result.note and "lab2" not in result.note
