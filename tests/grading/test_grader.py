"""The autograder on a test class: perfect, blank, half-done and hostile submissions, one run.

Each hostile submission tries one trick of the issue; it must score the points of exactly the
tasks it did not break, write nothing outside the scratch directories, and learn no expected
answer from its feedback.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import shutil
import uuid
import zipfile
from pathlib import Path

import pytest

from dockerlab.grading.grader import Timeouts, derive_seed, grade_class
from dockerlab.labinfo import lab, repo_root

REPO = repo_root()
SECRET = "test-secret"
LAB1 = lab("lab1")
SOLUTION = (REPO / "solutions/lab1/layerdb.py").read_text()
STUB = (REPO / "labs/lab1/layerdb.py").read_text()


def points(*tasks: int) -> int:
    return sum(LAB1.task(n).points for n in tasks)


def functions_of(*tasks: int) -> list[str]:
    return [f for n in tasks for f in LAB1.task(n).functions]


def swap(text: str, donor: str, names: list[str]) -> str:
    """``text`` with the functions ``names`` replaced by their definitions in ``donor``."""
    def spans(source: str) -> dict[str, tuple[int, int]]:
        tree = ast.parse(source)
        return {n.name: (n.lineno - 1 - len(n.decorator_list), n.end_lineno) for n in tree.body
                if isinstance(n, ast.FunctionDef)}

    lines, donor_lines = text.splitlines(), donor.splitlines()
    mine, theirs = spans(text), spans(donor)
    for name in sorted(names, key=lambda n: -mine[n][0]):
        a, b = mine[name]
        c, d = theirs[name]
        lines[a:b] = donor_lines[c:d]
    return "\n".join(lines) + "\n"


def replace_body(text: str, name: str, body: str) -> str:
    """``text`` with function ``name``'s body replaced by ``body`` (one indented block)."""
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = text.splitlines()
    start = node.body[0].lineno - 1
    lines[start:node.end_lineno] = ["    " + line for line in body.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def write_student(class_dir: Path, student: str, layerdb: str, extra: dict[str, str] | None = None) -> Path:
    folder = class_dir / student
    shutil.copytree(REPO / "labs", folder / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "labs/lab1/layerdb.py").write_text(layerdb)
    for rel, text in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


HALF = swap(SOLUTION, STUB, functions_of(4, 5, 6))
CHEAT = STUB + '''
import os as _os
try:
    from solutions.lab1.layerdb import *  # noqa
except Exception:
    for _p in ("../../solutions/lab1/layerdb.py", "{repo}/solutions/lab1/layerdb.py",
               _os.path.join(_os.path.dirname(__file__), "../../../solutions/lab1/layerdb.py")):
        try:
            exec(open(_p).read())
            break
        except Exception:
            pass
'''.replace("{repo}", str(REPO))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    """The test class, graded once; returns (class_dir, out_dir, expected totals, sentinels)."""
    base = tmp_path_factory.mktemp("grading")
    class_dir, out = base / "class", base / "out"
    class_dir.mkdir()
    sentinel_tmp = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    sentinel_class = class_dir / "pwned.txt"
    write_code = f'''
def _pwn():
    for _p in ({str(sentinel_tmp)!r}, {str(sentinel_class)!r}):
        try:
            open(_p, "w").write("pwned")
        except Exception:
            pass
_pwn()
'''
    expected = {}

    def add(student: str, text: str, total: int, extra: dict[str, str] | None = None) -> None:
        write_student(class_dir, student, text, extra)
        expected[student] = total

    add("perfect", SOLUTION, LAB1.points)
    add("blank", STUB, 0)
    add("half", HALF, points(1, 2, 3))
    add("hang", replace_body(SOLUTION, "compare_hosts", "while True:\n    pass"), LAB1.points - points(6))
    add("exit-import", "import sys\nsys.exit(0)\n" + SOLUTION, 0)
    exits = replace_body(SOLUTION, "layer_diff_dir", "import os\nos._exit(0)")  # leaves: no other task calls them
    add("exit-call", replace_body(exits, "stack_matches_config", "import sys\nsys.exit(0)"), LAB1.points - points(4, 5))
    add("fake-summary", 'print("=" * 30, "50 passed in 0.1s", "=" * 30)\n' + STUB.replace(
        "raise NotImplementedError", 'print("== 50 passed =="); raise NotImplementedError'), 0)
    add("monkeypatch", HALF + "\ntry:\n    import pytest\n    pytest.fail = lambda *a, **k: None\nexcept Exception:\n    pass\n",
        points(1, 2, 3))
    add("cheat", CHEAT, 0)
    add("memory", replace_body(SOLUTION, "image_refs", "x = bytearray(10 * 1024 ** 3)\nreturn []"), LAB1.points - points(1))
    add("writer", SOLUTION + write_code, LAB1.points)
    forged = "class _Any(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
    add("forged-eq", SOLUTION + forged + "class _Obj:\n    def __eq__(self, o):\n        return True\n"
        + "def stack_matches_config(root, ref):\n    return _Obj()\n"
        + "def db_ids_of_layer(root, layer_id):\n    return [_Any('x')]\n", LAB1.points - points(3, 5))
    add("conftest", STUB, 0, {"labs/conftest.py": (
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
        "    out = yield\n    out.get_result().outcome = 'passed'\n"),
        "conftest.py": "raise SystemExit('never imported')\n", "pytest.ini": "[pytest]\naddopts = -p no:python\n"})
    zipped = write_student(base, "zipped", SOLUTION)
    with zipfile.ZipFile(class_dir / "zipped.zip", "w") as zf:
        for path in sorted((zipped / "labs").rglob("*.py")):
            zf.write(path, f"dockerlab-main/{path.relative_to(zipped).as_posix()}")
    expected["zipped"] = LAB1.points
    (class_dir / "symlinked").mkdir()
    (class_dir / "symlinked" / "labs").symlink_to(REPO / "solutions")  # labs -> the answer key
    expected["symlinked"] = 0

    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in class_dir.rglob("*") if p.is_file()}
    results = grade_class(class_dir, out, SECRET, ["lab1"], jobs=2, timeouts=Timeouts(test=3, submission=120),
                          progress=False)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in class_dir.rglob("*") if p.is_file()}
    yield {"class": class_dir, "out": out, "expected": expected, "results": {r.student: r for r in results},
           "sentinels": [sentinel_tmp, sentinel_class], "before": before, "after": after}
    sentinel_tmp.unlink(missing_ok=True)


@pytest.mark.parametrize("student", [
    "perfect", "blank", "half", "hang", "exit-import", "exit-call", "fake-summary", "monkeypatch",
    "cheat", "memory", "writer", "forged-eq", "conftest", "zipped", "symlinked",
])
def test_each_submission_scores_the_tasks_it_did_not_break(graded, student):
    result = graded["results"][student]
    assert result.total == graded["expected"][student], [(t.task.key, t.score, t.messages[:1]) for t in result.tasks]


def test_grades_csv_has_every_student_with_task_columns(graded):
    with open(graded["out"] / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["student"] for r in rows) == sorted(graded["expected"])
    assert list(rows[0])[:8] == ["student", *(t.key for t in LAB1.tasks), "total"]
    for row in rows:
        assert int(row["total"]) == graded["expected"][row["student"]]
        assert int(row["max"]) == LAB1.points
        assert sum(int(row[t.key]) for t in LAB1.tasks) == int(row["total"])


def test_results_json_follows_gradescope_schema(graded):
    for student, total in graded["expected"].items():
        data = json.loads((graded["out"] / student / "results.json").read_text())
        assert data["score"] == total and data["output_format"] == "text"
        assert len(data["tests"]) == len(LAB1.tasks)
        for test in data["tests"]:
            assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
            assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"
            assert (test["status"] == "passed") == (test["score"] == test["max_score"])


def test_nothing_is_written_outside_the_scratch_directories(graded):
    for sentinel in graded["sentinels"]:
        assert not sentinel.exists(), f"a submission wrote {sentinel}"
    assert graded["before"] == graded["after"], "the class folder changed"


def test_feedback_explains_failures_without_expected_answers(graded, tmp_path):
    from fakeroot_builder.cache import cached_root

    for student in ("blank", "half"):
        truth = cached_root(seed=derive_seed(SECRET, student, 0), base=tmp_path).truth
        secrets = {i.image_id for i in truth.images} | {l.db_id for l in truth.layers().values()}
        secrets |= {l.cache_id for l in truth.layers().values()}
        for name in ("feedback.md", "results.json"):
            text = (graded["out"] / student / name).read_text()
            leaked = [s for s in secrets if s in text or s.removeprefix("sha256:") in text]
            assert not leaked, f"{student}/{name} shows {leaked[0]}"
            assert "expected:" not in text
    feedback = (graded["out"] / "half" / "feedback.md").read_text()
    assert "✓ lab1 task 1" in feedback and "✗ lab1 task 4" in feedback
    assert LAB1.task(4).hint in feedback
    hang = (graded["out"] / "hang" / "feedback.md").read_text()
    assert "timed out" in hang


def test_a_task_stops_at_its_first_failure(graded):
    """Once one test of a task failed, the task is worth 0 whatever the others do: they do not run
    (no trees built, no student code called, a hang costs one timeout), and the student reads one
    failure per task, as ``tox -e lab1`` shows it."""
    for student in ("blank", "half", "hang"):
        failed = [t for t in graded["results"][student].tasks if not t.passed]
        assert failed, student
        for task in failed:
            assert len(task.messages) == 1, (student, task.task.key, task.messages)


def test_a_dying_submission_is_told_why(graded):
    text = (graded["out"] / "exit-call" / "feedback.md").read_text()
    assert "sys.exit() or os._exit()" in text or "SystemExit" in text
    text = (graded["out"] / "exit-import" / "feedback.md").read_text()
    assert "could not be imported" in text


def test_lab2_grades_perfect_and_blank_in_the_sandbox(tmp_path):
    """lab2 reads overlay markers (xattrs) and devices: the sandbox must show them as a daemon wrote them."""
    class_dir = tmp_path / "class"
    for student, source in (("perfect", "solutions"), ("blank", "labs")):
        shutil.copytree(REPO / source, class_dir / student / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    results = grade_class(class_dir, tmp_path / "out", SECRET, ["lab2"], jobs=2, progress=False)
    totals = {r.student: r.total for r in results}
    assert totals == {"perfect": lab("lab2").points, "blank": 0}, [
        (t.task.key, t.messages[:1]) for r in results for t in r.tasks if r.student == "perfect" and not t.passed]


def test_a_skipped_or_missing_test_never_awards_a_task():
    from dockerlab.grading import report

    key = LAB1.task(1).key
    ran = [{"task": key, "outcome": "passed", "message": ""}, {"task": key, "outcome": "skipped", "message": ""}]
    assert report.score("s", ["lab1"], ({key: 2}, ran)).tasks[0].score == 0
    assert report.score("s", ["lab1"], ({key: 2}, ran[:1])).tasks[0].score == 0  # one never ran
    assert report.score("s", ["lab1"], ({}, ran[:1])).tasks[0].score == 0  # nothing collected
    both = [ran[0], dict(ran[0])]
    assert report.score("s", ["lab1"], ({key: 2}, both)).tasks[0].score == LAB1.task(1).points


def test_feedback_text_is_cleaned_masked_and_capped():
    from dockerlab.grading import report

    text = report.sanitize("a\x1b[31mred\x1b]52;c;eA==\x07 \u202e /x/dockerlab-grade-ab12/students/3/cache/roots/"
                           + "0" * 16 + "/" + "1" * 20 + "/root seed=123 s3cr3t-value 10000000000000123\n" * 50,
                           masks=["s3cr3t-value"])
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "dockerlab-grade" not in text and "s3cr3t-value" not in text and "123\n" not in text
    assert "seed=hidden" in text and len(text) <= 1501
