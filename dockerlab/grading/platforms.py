"""The student repository and the two platforms: GitHub Classroom and Gradescope.

``release`` copies what students get (no ``solutions/``, no secret) and adds a README and a
GitHub Classroom workflow; ``gradescope_bundle`` zips the instructor's grader for Gradescope.
Both graders are the same ``dockerlab grade``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

from fakeroot_builder.errors import DockerLabError

from dockerlab.labinfo import labs as all_labs
from dockerlab.labinfo import repo_root

__all__ = ["classroom_result", "gradescope_bundle", "release"]

#: What a student repository holds, relative to the course repository.
_RELEASED = ("labs", "tests", "fakeroot_builder", "dockerlab", "tox.ini", "pyproject.toml")
_NEVER = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "solutions", "grading")

CLASSROOM_WORKFLOW = """\
# Grades every push with the course grader (dockerlab grade) and reports points to GitHub Classroom.
name: Autograding Tests
"on":
  - push
  - workflow_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    name: Autograding Tests
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    timeout-minutes: 20
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install
        run: |
          sudo apt-get update -q && sudo apt-get install -y -q bubblewrap
          python -m pip install -q -e ".[test]"
      - name: Grade
        id: dockerlab
        env:
          DOCKERLAB_SECRET: ${{ secrets.DOCKERLAB_SECRET || github.repository }}
        run: |
          mkdir -p "$RUNNER_TEMP/class/student"
          cp -r labs "$RUNNER_TEMP/class/student/labs"
          dockerlab grade "$RUNNER_TEMP/class" --out "$RUNNER_TEMP/grades"
          cat "$RUNNER_TEMP/grades/student/feedback.md"
          echo "result=$(python -m dockerlab.grading.platforms "$RUNNER_TEMP/grades/student/results.json")" >> "$GITHUB_OUTPUT"
      - name: Report points
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
          DOCKERLAB_RESULTS: ${{ steps.dockerlab.outputs.result }}
        with:
          runners: dockerlab
"""

STUDENT_README = """\
# dockerlab — how Docker stores images on disk

Your work goes in `labs/` ({labs}). Each function has a docstring and a `# TODO: task N`.

    python3 -m venv .venv && . .venv/bin/activate && pip install tox -e .   # once
    . .venv/bin/activate                 # in each new shell
    tox -e lab1                          # lab 1 against your labs/ (tox -e lab1 -- -k task3: one task)
    dockerlab watch                      # re-run on every save, one task at a time (q quits, h hint)
    dockerlab progress                   # every lab: what is done
    dockerlab hint lab1 3                # the hint of a task
    dockerlab student-id <your id>       # also test on a tree of your own
    dockerlab build --out ~/fake-docker  # a Docker root to explore (dockerlab clean ~/fake-docker)

The handouts are in `labs/lab1/README.md` and `labs/lab2/README.md` (한국어: `README.ko.md`).

The tests compare your answers with what the builder wrote. Grading runs the same tests on trees
generated for you alone, so answers copied from another tree score nothing: read the disk.

Only the files under `labs/` are graded; changes to the tests or to anything else are ignored.
Every push is graded by GitHub Classroom (see the Actions tab for your feedback).

Tasks:

{tasks}
"""

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
apt-get update -q && apt-get install -y -q python3 python3-pip python3-venv bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q -e "/autograder/source[test]"
"""

STUDENT_TOX = """\
[tox]
requires = tox>=4
env_list = lab1, lab2

[testenv]
description = grade a lab against your code in labs/
package = editable
extras = test
pass_env = DOCKERLAB_*, HOME, XDG_CACHE_HOME

[testenv:lab{1,2,3,4,5,6,7,8,9}]
description = a lab against your code in labs/ (tox -e lab1)
package = skip
deps = -e .[test]
set_env = PYTEST_ADDOPTS=--impl labs -q --no-header
commands = pytest tests/test_{envname}.py {posargs}
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade it like any class, copy results.json.
set -uo pipefail
export DOCKERLAB_SECRET="${DOCKERLAB_SECRET:-$(cat /autograder/source/.dockerlab-secret)}"
class=$(mktemp -d) out=$(mktemp -d)
# The student id (hidden seeds derive from it): the Gradescope user id of the submitter.
student=$(/autograder/venv/bin/python -c 'import json; print(json.load(open("/autograder/submission_metadata.json"))["users"][0]["id"])' 2>/dev/null || echo submission)
mkdir -p "$class/$student"
if [ -d /autograder/submission/labs ]; then cp -r /autograder/submission/labs "$class/$student/labs";
else mkdir -p "$class/$student/labs"; cp -r /autograder/submission/. "$class/$student/labs/" 2>/dev/null; fi
cd /autograder/source
/autograder/venv/bin/dockerlab grade "$class" --out "$out" --no-progress
mkdir -p /autograder/results
cp "$out/$student/results.json" /autograder/results/results.json
"""


def _copy_course(target: Path, *, with_grading: bool) -> None:
    source = repo_root()
    ignore = _NEVER if not with_grading else shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "solutions")
    for name in _RELEASED:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=ignore, symlinks=False)
        elif src.is_file():
            shutil.copy2(src, target / name)
    # Only the graded tests and their fixtures: the maintainer's tests (author check, reader,
    # grader, conformance) need solutions/ or a Docker daemon.
    tests = target / "tests"
    for entry in tests.iterdir():
        if entry.name == "conftest.py" or (entry.name.startswith("test_lab") and entry.suffix == ".py"):
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    (target / "tox.ini").write_text(STUDENT_TOX, encoding="utf-8")


def release(out: Path) -> Path:
    """Write the student repository into ``out`` (absent or empty): no solutions, no secret.

    The released ``dockerlab`` keeps its ``grading`` package so the Classroom workflow can run
    the same grader; it holds no secret (the workflow takes one from the repository's secrets).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DockerLabError(f"{out}: not empty; release writes only into an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    _copy_course(out, with_grading=False)
    shutil.copytree(Path(__file__).parent, out / "dockerlab" / "grading",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    tasks = "\n".join(f"- {t.key}: {t.title} ({t.points} points)" for lab in all_labs() for t in lab.tasks)
    labs = ", ".join(f"`labs/{lab.module}`" for lab in all_labs())
    (out / "README.md").write_text(STUDENT_README.format(labs=labs, tasks=tasks), encoding="utf-8")
    workflows = out / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "classroom.yml").write_text(CLASSROOM_WORKFLOW, encoding="utf-8")
    (out / ".gitignore").write_text("__pycache__/\n*.egg-info/\n.tox/\n.pytest_cache/\n.dockerlab-student\n"
                                    ".dockerlab-progress.json\n.dockerlab-backup/\n")
    leaked = [p for p in out.rglob("*") if p.name in ("solutions", ".dockerlab-secret")]
    if leaked:
        raise DockerLabError(f"release would include {leaked[0]}")
    return out


def gradescope_bundle(out_zip: Path, secret: str | None = None) -> Path:
    """The Gradescope autograder zip: ``setup.sh``, ``run_autograder`` and the course grader.

    Gradescope unpacks the zip into ``/autograder/source``, so the course sits at its top.

    The secret comes from ``$DOCKERLAB_SECRET`` in Gradescope's environment if set there, else
    from ``.dockerlab-secret`` baked into the zip when ``secret`` is given (keep the zip private).
    """
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as archive:
        def add(path: str, data: str | bytes, mode: int = 0o644) -> None:
            info = zipfile.ZipInfo(path)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)

        add("setup.sh", SETUP_SH, 0o755)
        add("run_autograder", RUN_AUTOGRADER, 0o755)
        source = repo_root()
        for name in _RELEASED:
            src = source / name
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
            for path in files:
                rel = path.relative_to(source)
                if "__pycache__" in rel.parts or rel.parts[:2] == ("tests", "grading") or "solutions" in rel.parts:
                    continue
                add(rel.as_posix(), path.read_bytes())
        if secret:
            add(".dockerlab-secret", secret, 0o600)
    return out_zip


def classroom_result(results_json: Path) -> str:
    """A Gradescope ``results.json`` as the base64 runner result GitHub Classroom's reporter reads."""
    data = json.loads(Path(results_json).read_text(encoding="utf-8"))
    tests = [
        {"name": t["name"], "status": "pass" if t["status"] == "passed" else "fail", "score": t["score"],
         "message": t.get("output", ""), "test_code": "", "filename": "", "line_no": 0, "execution_time": "0s"}
        for t in data.get("tests", [])
    ]
    payload = {
        "version": 1,
        "status": "pass" if tests and all(t["status"] == "pass" for t in tests) else "fail",
        "max_score": sum(t.get("max_score", 0) for t in data.get("tests", [])),
        "tests": tests,
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


if __name__ == "__main__":  # python -m dockerlab.grading.platforms results.json
    import sys

    print(classroom_result(Path(sys.argv[1])))
    os._exit(0)
