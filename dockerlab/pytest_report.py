"""How a graded run prints: calm, one failure per task, the progress table last.

Loaded by ``tests/conftest.py``. A run whose tests all belong to lab tasks (``tox -e lab1``)
prints, instead of pytest's failure sections and short summary:

* for each failing task, one representative failure (the task, the call, what came back, what
  was expected) and the task's hint once, the other failures of the task counted; tasks not
  started yet (every test hit ``NotImplementedError``) after the first get one line;
* sha256 ids shortened to 12 hex digits, longer only where two ids differ further in;
* the progress table last (saved progress for the tasks this run did not run).

``-v`` shows every failure (``-vv``: with full ids). Runs of the student's own ``labs/`` update
the saved progress (:mod:`dockerlab.progress`). Scores follow :func:`dockerlab.labinfo.task_passed`.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from pathlib import Path
from collections import Counter, defaultdict
from typing import Any

import pytest

from . import labinfo, progress
from .display import shorten_ids

__all__: list[str] = []

_NOT_STARTED = ("raised NotImplementedError", "Did you define it?")


class _Report:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tests: Counter[str] = Counter()  # task key -> tests it has (collected, before -k)
        self.task_of: dict[str, str] = {}  # nodeid -> task key
        self.outcome: dict[str, str] = {}  # nodeid -> final outcome
        self.failures: dict[str, list[str]] = defaultdict(list)  # task key -> messages, in order
        self.graded = False
        self.chosen: Counter[str] = Counter()  # task key -> tests selected to run
        self.not_started: set[str] = set()  # tasks whose functions are all still the stub
        self.first_seen: set[str] = set()
        self.verbose = 0
        self.started = time.monotonic()

    # -- collection ---------------------------------------------------------------------------

    def collected(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("task")
            if marker is not None:
                key = f"{marker.args[0]}.task{marker.args[1]}"
                self.tests[key] += 1
                self.task_of[item.nodeid] = key

    def selected(self, items: list[pytest.Item]) -> None:
        self.graded = bool(items) and all(i.nodeid in self.task_of for i in items)
        if not self.graded:
            return
        for item in items:
            self.chosen[self.task_of[item.nodeid]] += 1
        option = self.config.option
        self.verbose = _user_verbosity(self.config)
        option.no_summary = True  # no FAILURES sections, no short summary: this plugin reports
        option.verbose = -2  # progress dots only; the stats line moves into this report
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.reportchars = ""

    # -- results ------------------------------------------------------------------------------

    def trim(self, items: list[pytest.Item]) -> None:
        """A task not started yet fails its first test; the others would only say it again.

        Its functions are all still the stub (``raise NotImplementedError``), so it cannot score:
        its first selected test runs (for the real message) and the rest are deselected, counted
        as not run. ``-v`` (and any run that is not only graded tests) runs them all.
        """
        if not items or not all(i.nodeid in self.task_of for i in items):
            return
        if _user_verbosity(self.config) >= 1:
            return
        lab_ids = {self.task_of[i.nodeid].split(".")[0] for i in items}
        self.not_started = _untouched_tasks(str(self.config.getoption("--impl", default="labs")), lab_ids)
        if not self.not_started:
            return
        keep, drop, seen = [], [], set()
        for item in items:
            key = self.task_of[item.nodeid]
            if key in self.not_started and key in seen:
                drop.append(item)
                self.chosen[key] += 1  # selected, then left out: still one of the task's tests
            else:
                seen.add(key)
                keep.append(item)
        if drop:
            items[:] = keep
            self.config.hook.pytest_deselected(items=drop)

    def record(self, report: pytest.TestReport) -> None:
        key = self.task_of.get(report.nodeid)
        if key is None:
            return
        if report.when == "setup" and report.outcome != "passed":
            self.outcome[report.nodeid] = "error" if report.failed else report.outcome
        elif report.when == "call":
            self.outcome[report.nodeid] = report.outcome
        elif report.when == "teardown" and report.failed:
            self.outcome[report.nodeid] = "error"
        else:
            return
        if report.failed:
            self.failures[key].append(_message(report))

    def runs(self) -> dict[str, progress.TaskRun]:
        outcomes: dict[str, list[str]] = defaultdict(list)
        for nodeid, outcome in self.outcome.items():
            outcomes[self.task_of[nodeid]].append(outcome)
        return {key: progress.TaskRun(found, self.tests[key]) for key, found in outcomes.items()}

    # -- output -------------------------------------------------------------------------------

    def summary(self, reporter: Any) -> None:
        runs = self.runs()
        if not runs:
            return
        impl = str(self.config.getoption("--impl", default="labs"))
        width = max(60, min(getattr(reporter._tw, "fullwidth", 80), 120)) - 1
        write = reporter.write_line
        if self.graded:
            self._failures(write, width)
            counts = Counter("not run" if o == "skipped" else o for o in self.outcome.values())
            counts["not run"] += max(0, sum(self.chosen.values()) - len(self.outcome))
            parts = [f"{n} {what}" for what, n in sorted(counts.items()) if n]
            write("")
            write(f"{sum(counts.values())} tests: {', '.join(parts)} in {time.monotonic() - self.started:.1f}s")
        if os.environ.get("DOCKERLAB_REPORT_JSON"):  # for dockerlab watch
            _write_json(os.environ["DOCKERLAB_REPORT_JSON"], runs, self.failures)
        student = (impl == "labs" and not os.environ.get("DOCKERLAB_HIDDEN_SEEDS")
                   and os.environ.get("DOCKERLAB_PROGRESS") != "0")
        saved = progress.update(runs) if student else {k: {"done": r.done} for k, r in runs.items()}
        note = "" if student else f"  (graded: {impl})"
        for lab in labinfo.labs():
            if not any(t.key in runs for t in lab.tasks):
                continue
            write("")
            for line in progress.render(lab, saved, runs.keys(), note):
                write(line)

    def _failures(self, write: Any, width: int) -> None:
        first_not_started, compact_before = True, False
        for lab in labinfo.labs():
            for task in lab.tasks:
                messages = self.failures.get(task.key)
                if not messages:
                    continue
                if self.verbose >= 1:  # -v: every failure, the hint once
                    shown = [m if i == 0 else _without_hint(m) for i, m in enumerate(messages)]
                    write("")
                    for message in shown:
                        _write_wrapped(write, message if self.verbose >= 2 else shorten_ids(message), width)
                    continue
                not_started = all(any(s in m for s in _NOT_STARTED) for m in messages)
                if not (not_started and not first_not_started and compact_before):
                    write("")
                compact_before = not_started and not first_not_started
                if compact_before:
                    called = re.search(r"(\w+)\(", messages[0].split(":", 1)[-1])
                    what = f"{called.group(1)}() is not written yet" if called else "not written yet"
                    _write_wrapped(write, f"Task {task.number} ({task.title}): not started, {what} ({self.chosen[task.key]} tests)."
                                          f" Hint: dockerlab hint {lab.id} {task.number}", width)
                    continue
                first_not_started = first_not_started and not not_started
                _write_wrapped(write, shorten_ids(messages[0]), width)
                more = len(messages) - 1
                untried = self.chosen[task.key] - len(messages) if task.key in self.not_started else 0
                if untried > 0:
                    _write_wrapped(write, f"  ({untried} more test{'s' if untried > 1 else ''} of task {task.number} not run:"
                                          f" every function of it is still the stub; -v runs them)", width)
                if more:
                    _write_wrapped(write, f"  … and {more} more failing test{'s' if more > 1 else ''} of task {task.number}"
                                          f" (all: tox -e {lab.id} -- -v -k task{task.number})", width)


def _write_json(target: str, runs: dict[str, progress.TaskRun], failures: dict[str, list[str]]) -> None:
    data = {
        key: {"verdict": run.verdict, "tests": run.tests, "ran": len(run.outcomes),
              "failures": failures.get(key, [])[:1], "failed": len(failures.get(key, []))}
        for key, run in runs.items()
    }
    tmp = f"{target}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, target)


def _user_verbosity(config: pytest.Config) -> int:
    """The verbosity the student asked for: tox's lab environments pass ``-q``, so ``-v`` is 0 there."""
    verbose = int(getattr(config.option, "verbose", 0))  # absent under -p no:terminal
    return verbose + 1 if _under_tox_quiet(config) else verbose


def _untouched_tasks(impl: str, lab_ids: set[str]) -> set[str]:
    """Keys of the tasks whose every function, in the graded implementation, is still the stub."""
    import ast

    from .impl import repo_root

    base = repo_root() / "labs" if impl == "labs" else Path(impl) / "labs"
    if impl == "solutions" or impl.startswith("sandbox:"):
        return set()
    found = set()
    for lab in labinfo.labs():
        if lab.id not in lab_ids:
            continue
        try:
            tree = ast.parse((base / lab.module).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        stubs = {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and _is_stub_body(node.body)}
        found |= {t.key for t in lab.tasks if t.functions and all(f in stubs for f in t.functions)}
    return found


def _is_stub_body(body: list[Any]) -> bool:
    """``[docstring,] raise NotImplementedError(...)``: a function nobody has written yet."""
    import ast

    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    exc = body[0].exc
    called = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(called, ast.Name) and called.id == "NotImplementedError"


def _under_tox_quiet(config: pytest.Config) -> bool:
    """tox's lab environments pass ``-q``: count the student's ``-v`` from there."""
    given = list(config.invocation_params.args) + os.environ.get("PYTEST_ADDOPTS", "").split()
    return "-q" in given


def _message(report: pytest.TestReport) -> str:
    text = report.longreprtext.strip()
    if text.startswith("Task ") or text.startswith("This check"):
        return text
    lines = text.splitlines()  # an ordinary traceback: keep the error lines and where it was
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    where = [line for line in lines if re.match(r"^\S+:\d+: ", line)]
    kept = errors[:8] + where[-1:] if errors else lines[-8:]
    return f"{report.nodeid.split('::')[-1]}:\n  " + "\n  ".join(kept)


def _without_hint(message: str) -> str:
    return message.split("\n  hint: ")[0]


def _write_wrapped(write: Any, message: str, width: int) -> None:
    for line in message.splitlines():
        indent = len(line) - len(line.lstrip())
        for part in textwrap.wrap(line, width, subsequent_indent=" " * (indent + 4), break_on_hyphens=False, break_long_words=False) or [""]:
            write(part)


# -- hooks ------------------------------------------------------------------------------------------


class _Hooks:
    """The hooks of one session, bound to its :class:`_Report`."""

    def __init__(self, state: _Report) -> None:
        self.state = state

    @pytest.hookimpl(hookwrapper=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Any:
        self.state.collected(items)  # every test of every task, before -k
        yield
        self.state.trim(items)  # after -k and the other plugins' selection

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.state.selected(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.record(report)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.state.summary(terminalreporter)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Hooks(_Report(config)), "dockerlab-report")
