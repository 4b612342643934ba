"""The pytest plugin of the trusted grading run: per-test outcomes, written where students cannot.

It runs in the grader's own child process (student code only runs in the sandboxed worker), and
sends one JSON line per graded test down a pipe to the grader, which keeps them in its own
memory: no file a worker could find, rewrite or replace. A submission killed half-way still
leaves the outcomes of the tests before. Messages are capped (:data:`MAX_MESSAGE`), so an
enormous answer cannot blow up the grader. It also gives each test a time budget for student
code (see :func:`.worker.set_budget`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from . import worker

__all__ = ["MAX_MESSAGE", "Recorder"]

#: Characters of one failure message kept (the feedback shows even less).
MAX_MESSAGE = 4000


def _task_key(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("task")
    return f"{marker.args[0]}.task{marker.args[1]}" if marker else None


class Recorder:
    """Record ``{"test", "task", "outcome", "message"}`` lines (and the collected tests first)."""

    def __init__(self, target: int | Path, test_timeout: float, timing: dict[str, float] | None = None) -> None:
        """``target``: a pipe's write end (the grader) or a file path (appended to).

        ``timing``: seconds the grader already spent (reported at the end with the workers' start-up
        and the whole pytest run, for the benchmark)."""
        self.test_timeout = test_timeout
        self.timing = dict(timing or {})
        self.started = time.monotonic()
        self.failed: set[str] = set()  # tasks with a test that did not pass: already worth 0
        self.not_run: set[str] = set()  # their later tests, skipped and not reported
        if isinstance(target, int):
            self._fh = os.fdopen(target, "w", encoding="utf-8")
        else:
            self._fh = open(target, "a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        counts: dict[str, int] = {}
        for item in session.items:
            key = _task_key(item)
            if key:
                counts[key] = counts.get(key, 0) + 1
        self._write({"collected": counts})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """A task earns its points only when every test passes: once one failed, its other tests
        cannot change the score, so they do not run (no trees built, no student code called)."""
        if _task_key(item) in self.failed:
            self.not_run.add(item.nodeid)
            pytest.skip("its task already failed")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]):  # type: ignore[no-untyped-def]
        """Time the copies to damage, made before any student code runs (for the benchmark)."""
        started = time.monotonic()
        yield
        if fixturedef.argname == "_spare_copies":
            self.timing["damaged_copies"] = self.timing.get("damaged_copies", 0.0) + time.monotonic() - started

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):  # type: ignore[no-untyped-def]
        worker.set_budget(self.test_timeout)
        try:
            yield
        finally:
            worker.set_budget(None)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
        outcome = yield
        report = outcome.get_result()
        key = _task_key(item)
        if key is None or item.nodeid in self.not_run or not (
                report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
            return
        if report.outcome != "passed":
            self.failed.add(key)
        message = ""
        if report.outcome != "passed" and call.excinfo is not None:
            if call.excinfo.errisinstance(pytest.fail.Exception):
                message = str(call.excinfo.value.msg or "")
            elif report.when == "setup":
                message = f"the grader could not prepare this test ({call.excinfo.typename}); tell your instructor"
            else:
                message = f"the grader's own check failed ({call.excinfo.typename}); tell your instructor"
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "…"
        self._write({"test": item.nodeid, "task": key, "outcome": report.outcome, "message": message})

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.timing.update(pytest=time.monotonic() - self.started, worker_starts=worker.STATS["starts"],
                           worker_start_seconds=worker.STATS["start_seconds"],
                           cgroup_join_seconds=worker.STATS.get("cgroup_seconds", 0.0))
        self._write({"timing": self.timing})
        self._fh.close()
