"""The author check (rustlings' `dev check`): labs and solutions stay mirrored and honest.

Every stub fails every graded test of its lab; every solution passes (the default run grades
solutions/); every task has a hint, points, a TODO in its stub and at least one graded test;
labs and solutions mirror each other file for file; handouts exist in English and Korean.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dockerlab import labinfo

REPO = Path(__file__).resolve().parent.parent
LABS = labinfo.labs()


def _public_functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}


def _python_files(base: Path) -> set[str]:
    return {p.relative_to(base).as_posix() for p in base.rglob("*.py") if "__pycache__" not in p.parts}


def test_labs_and_solutions_mirror_each_other_file_for_file():
    assert _python_files(REPO / "labs") == _python_files(REPO / "solutions")


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_stub_and_solution_define_the_same_functions_with_the_same_signatures(lab):
    stub = _public_functions(REPO / "labs" / lab.module)
    solution = _public_functions(REPO / "solutions" / lab.module)
    assert stub.keys() == solution.keys()
    for name in stub:
        assert ast.dump(stub[name].args) == ast.dump(solution[name].args), f"{name}: signatures differ"
        assert ast.get_docstring(stub[name]) == ast.get_docstring(solution[name]), f"{name}: docstrings differ"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_task_has_points_a_hint_and_functions_that_exist(lab):
    stub = _public_functions(REPO / "labs" / lab.module)
    listed = [f for task in lab.tasks for f in task.functions]
    for task in lab.tasks:
        assert task.points > 0 and len(task.hint) > 40, f"{task.key}: points and a real hint"
        assert task.functions, f"{task.key} lists no function"
    assert sorted(listed) == sorted(stub), "every public function belongs to exactly one task"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_stub_function_has_a_todo_for_its_task_and_raises(lab):
    source = (REPO / "labs" / lab.module).read_text().splitlines()
    functions = _public_functions(REPO / "labs" / lab.module)
    for task in lab.tasks:
        for name in task.functions:
            node = functions[name]
            body = "\n".join(source[node.lineno - 1 : node.end_lineno])
            assert f"# TODO: task {task.number}" in body, f"{name}: no '# TODO: task {task.number}'"
            assert "raise NotImplementedError" in body, f"{name}: a stub must raise NotImplementedError"
    solution = (REPO / "solutions" / lab.module).read_text()
    assert "TODO" not in solution, "solutions carry explanations, not TODOs"
    assert "Solution:" not in "\n".join(source), "a stub must not carry the solution's explanations"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_handouts_exist_in_english_and_korean(lab):
    folder = (REPO / "labs" / lab.module).parent
    english = (folder / "README.md").read_text(encoding="utf-8")
    korean = (folder / "README.ko.md").read_text(encoding="utf-8")
    assert len(english) > 2000 and len(korean) > 2000
    assert any("\uac00" <= ch <= "\ud7a3" for ch in korean), "README.ko.md is not in Korean"
    for task in lab.tasks:
        for name in task.functions:
            assert name in english and name in korean, f"handouts do not mention {name}()"


#: Every lab's graded tests, in course order.
_GRADED = [f"tests/test_{lab.id}.py" for lab in LABS]


def _graded_run(impl: str, tmp_path: Path) -> dict[str, str]:
    """Run the graded tests against ``impl`` in a fresh pytest; outcome per test id."""
    report = tmp_path / f"{impl}.xml"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", DOCKERLAB_PROGRESS="0")  # not the student's progress
    subprocess.run(
        [sys.executable, "-m", "pytest", *_GRADED, "--impl", impl,
         "-q", "-v", "-p", "no:cacheprovider", f"--junitxml={report}"],  # -v: every test, even of untouched stubs
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        outcomes[name] = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    return outcomes


def test_every_stub_fails_every_graded_test(tmp_path):
    outcomes = _graded_run("labs", tmp_path)
    assert len(outcomes) > 40
    passed = sorted(name for name, outcome in outcomes.items() if outcome != "failed")
    assert not passed, f"graded tests the unsolved stubs do not fail: {passed}"


def test_every_task_has_a_graded_test():
    tests = {}
    for path in (REPO / "tests").glob("test_lab*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "task":
                lab_id, number = (a.value for a in node.args)  # type: ignore[attr-defined]
                tests[(lab_id, number)] = tests.get((lab_id, number), 0) + 1
    for lab in LABS:
        for task in lab.tasks:
            assert tests.get((lab.id, task.number)), f"{task.key} has no graded test"
