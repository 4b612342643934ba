"""Tests of the test suite: the graded tests must fail every misconception of ``misconceptions.py``.

Each misconception is the solution with one function wrong. The graded tests of the task it
affects run in-process against it (``--impl`` pointing at a generated folder whose lab module
takes its functions from :func:`misconceptions.namespace`) and must fail at least once.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from misconceptions import MISCONCEPTIONS, Misconception
from dockerlab import labinfo

TESTS = Path(__file__).resolve().parent


class _Outcomes:
    """A pytest plugin collecting the outcome of each graded test of the nested run."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.outcomes.setdefault(report.nodeid, report.outcome)


def _impl_folder(tmp_path: Path, index: int, m: Misconception) -> Path:
    module = tmp_path / "labs" / labinfo.lab(m.lab).module
    module.parent.mkdir(parents=True)
    module.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "import misconceptions as _m\n"
        f"globals().update(_m.namespace(_m.MISCONCEPTIONS[{index}]))\n"
    )
    return tmp_path


def _slug(m: Misconception) -> str:
    return f"{m.lab}-task{m.task}-" + re.sub(r"[^a-z0-9]+", "-", m.name.lower()).strip("-")


@pytest.mark.parametrize("index", range(len(MISCONCEPTIONS)), ids=[_slug(m) for m in MISCONCEPTIONS])
def test_the_graded_tests_fail_the_misconception(index: int, tmp_path: Path) -> None:
    m = MISCONCEPTIONS[index]
    folder = _impl_folder(tmp_path, index, m)
    collector = _Outcomes()
    pytest.main(
        [str(TESTS / f"test_{m.lab}.py"), "--impl", str(folder), "-k", f"{m.lab}_task{m.task}",
         "-x", "-q", "-p", "no:cacheprovider"],
        plugins=[collector],
    )
    outcomes = set(collector.outcomes.values())
    assert collector.outcomes, f"no graded test of {m.lab} task {m.task} ran"
    if outcomes == {"skipped"}:
        pytest.skip(f"every test of {m.lab} task {m.task} was skipped here")
    assert "failed" in outcomes, (
        f"the graded tests of {m.lab} task {m.task} pass an implementation that believes "
        f"{m.name!r}: {sorted(collector.outcomes)}"
    )
