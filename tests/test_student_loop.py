"""The student's loop: the scoring rule, calm output, saved progress, reset, inspect/draw --impl labs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dockerlab import labinfo, progress
from dockerlab.cli import main
from dockerlab.display import shorten_ids

REPO = Path(__file__).resolve().parent.parent
HEX = "0123456789abcdef" * 4


# -- the one scoring rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcomes, tests, done",
    [
        (["passed", "passed"], 2, True),
        (["passed", "skipped"], 2, False),  # a skipped test never awards
        (["skipped", "skipped"], 2, False),
        (["passed"], 2, False),  # not every test ran
        (["passed", "failed"], 2, False),
        (["passed", "error"], 2, False),
        ([], 0, False),  # a task without tests awards nothing
    ],
)
def test_a_task_scores_only_when_every_test_ran_and_passed(outcomes, tests, done):
    assert labinfo.task_passed(outcomes, tests) is done


# -- short ids ------------------------------------------------------------------------------------


def test_ids_are_cut_to_12_hex_unless_they_differ_further_in():
    a = "ab" * 32
    b = a[:40] + "cd" * 12  # shares 40 hex digits with a
    c = a[:63] + "f"  # differs from a in the last digit only
    assert shorten_ids(f"got {a}") == f"got {a[:12]}…"
    assert shorten_ids(f"sha256:{HEX}") == f"sha256:{HEX[:12]}…"
    assert shorten_ids(f"{a} {b}") == f"{a[:41]}… {b[:41]}…"
    assert shorten_ids(f"[{a!r}] [{c!r}]") == f"[{a!r}] [{c!r}]"  # the difference is at the end: whole ids
    assert shorten_ids("x" * 64 + " " + HEX + "0") == "x" * 64 + " " + HEX + "0"  # not ids


# -- saved progress -------------------------------------------------------------------------------


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course checkout of our own (labs/ with the stubs), as $DOCKERLAB_REPO."""
    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("DOCKERLAB_REPO", str(tmp_path))
    return tmp_path


def test_progress_keeps_tasks_a_later_run_did_not_run(course):
    progress.update({"lab1.task1": progress.TaskRun(["passed"] * 3, 3), "lab1.task2": progress.TaskRun(["failed"], 2)}, course)
    saved = progress.update({"lab1.task3": progress.TaskRun(["passed"], 4)}, course)  # partial: no verdict
    assert saved["lab1.task1"]["done"] is True and saved["lab1.task2"]["done"] is False
    assert "lab1.task3" not in saved
    table = progress.render(labinfo.lab("lab1", course), saved, ["lab1.task2"])
    assert table[0].startswith("lab1 — The layer DB: 1/6 tasks done, 15/100 points")
    assert "✓ 1. " in table[1] and "(earlier run)" in table[1]
    assert "✗ 2. " in table[2] and "dockerlab hint lab1 2" in table[2]
    assert "· 3. " in table[3] and "not run yet" in table[3]
    everything = progress.render_all(course)
    for lab in labinfo.labs(course):
        assert f"{lab.id} — {lab.title}" in everything
    progress.forget(["lab1.task1"], course)
    assert "lab1.task1" not in progress.load(course)


def test_a_damaged_progress_file_is_ignored_not_fatal(course):
    progress.path(course).write_text("{not json")
    assert progress.load(course) == {}
    assert main(["progress"]) == 0


# -- reset ----------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_reset_of_one_task_restores_its_functions_only_and_keeps_a_backup(course, capsys):
    from dockerlab.student import reset

    _git(course, "init", "-q")
    _git(course, "add", "labs")
    _git(course, "commit", "-qm", "course")
    mine = (REPO / "solutions" / "lab1" / "layerdb.py").read_text()
    target = course / "labs" / "lab1" / "layerdb.py"
    target.write_text(mine)
    _git(course, "commit", "-qam", "my work")  # HEAD now holds the student's code, not the stub
    progress.update({"lab1.task3": progress.TaskRun(["passed"], 1), "lab1.task1": progress.TaskRun(["passed"], 1)}, course)

    backup = reset("lab1", 3, yes=True, root=course)

    assert backup is not None and backup.read_text() == mine
    now = target.read_text()
    for name in ("chain_ids", "db_ids_of_layer", "db_id_in_image"):  # task 3: the stub again
        body = now.split(f"def {name}(")[1].split("\ndef ")[0]
        assert "raise NotImplementedError" in body, name
    body = now.split("def resolve_image(")[1].split("\ndef ")[0]  # task 1: still the student's
    assert "NotImplementedError" not in body
    compile(now, str(target), "exec")
    saved = progress.load(course)
    assert "lab1.task3" not in saved and saved["lab1.task1"]["done"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_reset_asks_first_and_a_no_changes_nothing(course, monkeypatch):
    from dockerlab.student import reset

    _git(course, "init", "-q")
    _git(course, "add", "labs")
    _git(course, "commit", "-qm", "course")
    target = course / "labs" / "lab1" / "layerdb.py"
    target.write_text(target.read_text() + "\n# my notes\n")
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    assert reset("lab1", None, root=course) is None
    assert target.read_text().endswith("# my notes\n")
    assert not (course / ".dockerlab-backup").exists()


def test_reset_without_history_says_why(course, capsys):
    assert main(["reset", "lab1", "-y"]) == 2
    err = capsys.readouterr().err
    assert "labs/lab1/layerdb.py" in err and "Traceback" not in err


# -- inspect and draw with --impl labs ------------------------------------------------------------


@pytest.fixture
def half_done(tmp_path, monkeypatch):
    """A course whose lab 1 is written (the reference's code) and lab 2 is still the stub."""
    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "solutions" / "lab1" / "layerdb.py", tmp_path / "labs" / "lab1" / "layerdb.py")
    os.symlink(REPO / "solutions", tmp_path / "solutions")
    monkeypatch.setenv("DOCKERLAB_REPO", str(tmp_path))
    return tmp_path


def test_inspect_impl_labs_uses_yours_where_written_and_says_which(canonical, half_done, capsys):
    assert main(["inspect", "nginx", "--root", str(canonical.path), "--impl", "labs", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["sources"]["resolve_image"] == "yours" and got["sources"]["chain_ids"] == "yours"
    assert got["sources"]["read_link"] == "reference"  # lab 2 is not written yet
    image = canonical.truth.image("nginx:latest")
    assert [layer["cache_id"] for layer in got["layers"]] == [layer.cache_id for layer in image.layers]
    assert main(["inspect", "nginx", "--root", str(canonical.path), "--impl", "labs"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"your code: .*resolve_image\(\)", out) and re.search(r"reference: .*read_link\(\) \[lab2 task 1\]", out)


@pytest.mark.parametrize("wrong", ["lab1", "lab", "solution", "/no/such/folder"])
def test_a_wrong_impl_lists_what_exists(canonical, wrong, capsys):
    assert main(["inspect", "nginx", "--root", str(canonical.path), "--impl", wrong]) == 2
    err = capsys.readouterr().err
    assert repr(wrong) in err and "labs" in err and "solutions" in err and "Traceback" not in err


def test_an_unknown_image_lists_the_images_that_exist(canonical, capsys):
    assert main(["inspect", "nginxx", "--root", str(canonical.path)]) == 2
    err = capsys.readouterr().err
    assert "nginxx" in err
    for image in canonical.truth.images:
        for tag in image.repo_tags:
            assert tag in err


def test_draw_puts_the_base_at_the_bottom_and_the_container_on_top(canonical, capsys):
    assert main(["draw", "nginx", "--root", str(canonical.path)]) == 0
    out = capsys.readouterr().out
    image = canonical.truth.image("nginx:latest")
    boxes = out.split("└")[0]
    titles = [line.strip("│ ").split("   ")[0] for line in boxes.splitlines() if line.startswith("│ ") and not line.startswith("│   ")]
    n = len(image.layers)
    assert titles[-1] == "layer 1 (base)" and titles[-n:-1] == [f"layer {i}" for i in range(n, 1, -1)]
    assert titles[0].endswith("(container, read-write)") and titles[1].endswith("-init")
    base = image.layers[0]
    assert base.layer_id[7:19] in boxes and base.cache_id[:12] in boxes and f"l/{base.link}" in boxes
    for layer in image.layers:
        assert f"db id {layer.db_id[7:19]}" in boxes and f"size {layer.size} B" in boxes
    sharing = {other.repo_tags[0] for other in canonical.truth.images
               if other.image_id != image.image_id and base.db_id in {x.db_id for x in other.layers}}
    assert sharing and all(tag in out.split("layer 1 (base)")[1].splitlines()[0] for tag in sharing)


def test_draw_svg_is_well_formed_and_the_handout_shows_the_canonical_tree(canonical, tmp_path, capsys):
    target = tmp_path / "stack.svg"
    assert main(["draw", "nginx", "--root", str(canonical.path), "--svg", str(target)]) == 0
    tree = ET.parse(target)
    rects = tree.getroot().findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 1 + len(canonical.truth.image("nginx:latest").layers) + 2  # background, layers, -init, RW
    assert (REPO / "labs" / "lab1" / "nginx-stack.svg").read_text() == target.read_text(), (
        "labs/lab1/nginx-stack.svg is stale: dockerlab draw nginx --root <canonical> --svg labs/lab1/nginx-stack.svg")


def test_draw_impl_labs_with_stubs_draws_from_the_reference(canonical, course, capsys):
    os.symlink(REPO / "solutions", course / "solutions")
    assert main(["draw", "nginx", "--root", str(canonical.path), "--impl", "labs"]) == 0
    out = capsys.readouterr().out
    assert "your code:  none of these functions yet" in out and "resolve_image() [lab1 task 1]" in out


# -- the calm output of a graded run --------------------------------------------------------------


def test_a_run_on_the_stubs_fits_a_screen_and_ends_with_the_progress_table(course):
    env = dict(os.environ, DOCKERLAB_REPO=str(course), COLUMNS="80")
    env.pop("DOCKERLAB_STUDENT_ID", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", "labs", "-q", "--no-header", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    lines = run.stdout.rstrip("\n").splitlines()
    lab = labinfo.lab("lab1", course)
    assert run.returncode == 1
    assert len(lines) <= 56, run.stdout  # tox adds three lines: the first screen stays within 60
    assert max(len(line) for line in lines) <= 80
    assert lines[-len(lab.tasks) - 1].startswith("lab1 — The layer DB: 0/6 tasks done, 0/100 points")
    for task, line in zip(lab.tasks, lines[-len(lab.tasks):]):
        assert line.startswith(f"  ✗ {task.number}. {task.title}")
    assert "short test summary" not in run.stdout and "FAILED tests/" not in run.stdout
    assert run.stdout.count("hint: ") == 1  # one hint in full; the other tasks point at dockerlab hint
    for task in lab.tasks[1:]:
        assert f"Task {task.number} ({task.title}): not started" in run.stdout
    saved = progress.load(course)
    assert {key for key, value in saved.items() if value["done"] is False} == {t.key for t in lab.tasks}


def test_a_wrong_answer_shows_one_failure_per_task_with_its_hint_and_short_ids(tmp_path):
    sub = tmp_path / "student"
    shutil.copytree(REPO / "labs", sub / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    source = (REPO / "solutions" / "lab1" / "layerdb.py").read_text()
    head, rest = source.split("def chain_ids(", 1)
    doc_end = rest.index('"""', rest.index('"""') + 3) + 3
    source = head + "def chain_ids(" + rest[:doc_end] + "\n    return list(layer_ids)\n" + rest[doc_end:]
    (sub / "labs" / "lab1" / "layerdb.py").write_text(source)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", str(sub), "-q", "--no-header", "-p", "no:cacheprovider", "-k", "task3"],
        cwd=REPO, env=dict(os.environ, COLUMNS="100"), capture_output=True, text=True, timeout=600,
    )
    out = run.stdout
    task = labinfo.lab("lab1").task(3)
    assert out.count(f"Task 3 ({task.title}): wrong answer") == 1
    assert out.count("hint: ") == 1 and "more failing test" in out and "-v -k task3" in out
    assert not re.search(r"[0-9a-f]{64}", out), "ids must be shortened"
    assert re.search(r"sha256:[0-9a-f]{12}…", out)
    assert any(line.startswith("  ✗ 3. ") for line in out.rstrip().splitlines()[-6:])
    verbose = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", str(sub), "-q", "-v", "--no-header", "-p", "no:cacheprovider", "-k", "task3"],
        cwd=REPO, env=dict(os.environ, COLUMNS="100"), capture_output=True, text=True, timeout=600,
    ).stdout
    assert verbose.count(f"Task 3 ({task.title})") > 1 and verbose.count("hint: ") == 1


def test_the_report_works_without_pytest_s_terminal_reporter():
    # mutmut and other tools run pytest with -p no:terminal: then there is no `verbose` option
    env = dict(os.environ, DOCKERLAB_PROGRESS="0")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", "solutions", "-p", "no:terminal", "-x"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
