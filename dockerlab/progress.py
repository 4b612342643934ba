"""A student's saved progress: which tasks of which labs are done, kept between runs.

Every graded run of the student's own code (``tox -e labN``, ``dockerlab watch``) updates the
tasks it ran in ``.dockerlab-progress.json`` at the top of the repository (git-ignored);
``dockerlab progress`` shows every lab of ``labs/info.toml``. A task is done by the one rule of
:func:`dockerlab.labinfo.task_passed`; a run that ran only part of a task's tests can mark it
undone (a test failed) but never done.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import labinfo

__all__ = ["FILE_NAME", "TaskRun", "bar", "forget", "load", "path", "render", "render_all", "update"]

FILE_NAME = ".dockerlab-progress.json"


def path(root: Path | None = None) -> Path:
    """Where progress is saved: ``<repository>/.dockerlab-progress.json``."""
    return (root or labinfo.repo_root()) / FILE_NAME


def load(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """``{"lab1.task3": {"done": bool, "at": "2026-…"}, …}``; empty when nothing is saved (or the file is damaged)."""
    try:
        data = json.loads(path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.get("tasks", {}).items() if isinstance(v, dict) and isinstance(v.get("done"), bool)}


class TaskRun:
    """What one run saw of one task: the outcome of each test that ran, and how many tests it has."""

    def __init__(self, outcomes: Iterable[str], tests: int) -> None:
        self.outcomes = list(outcomes)
        self.tests = tests

    @property
    def done(self) -> bool:
        return labinfo.task_passed(self.outcomes, self.tests)

    @property
    def verdict(self) -> bool | None:
        """True (done), False (a test failed or was skipped), None (too few tests ran to say)."""
        if self.done:
            return True
        if any(o != "passed" for o in self.outcomes):
            return False
        return None


def _save(saved: Mapping[str, Any], root: Path | None) -> None:
    target = path(root)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dockerlab-progress.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "tasks": saved}, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, target)
    except OSError:  # a read-only checkout keeps working, it just does not remember
        pass


def forget(keys: Iterable[str], root: Path | None = None) -> None:
    """Drop saved results (after ``dockerlab reset``): those tasks show as not run yet."""
    saved = load(root)
    keys = [k for k in keys if k in saved]
    if keys:
        for key in keys:
            del saved[key]
        _save(saved, root)


def update(runs: Mapping[str, TaskRun], root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Merge one run's verdicts (by task key, ``lab1.task3``) into the saved progress; returns it.

    Written atomically (a temporary file renamed over the old one); a read-only checkout keeps
    working, it just does not remember.
    """
    saved = load(root)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    changed = False
    for key, run in runs.items():
        verdict = run.verdict
        if verdict is None:
            continue
        saved[key] = {"done": verdict, "at": stamp}
        changed = True
    if changed:
        _save(saved, root)
    return saved


def bar(done: int, total: int, width: int = 24) -> str:
    """``[########----------------]``: a progress bar of ``done`` out of ``total``."""
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def render(lab: labinfo.Lab, saved: Mapping[str, Mapping[str, Any]], this_run: Iterable[str] = (), note: str = "") -> list[str]:
    """The progress table of one lab, as a run ends with it.

    ``this_run`` lists the keys of the tasks the current run decided; others come from earlier
    runs (marked so) or were never run.
    """
    this_run = set(this_run)
    done = [t for t in lab.tasks if saved.get(t.key, {}).get("done")]
    points = sum(t.points for t in done)
    head = f"{lab.id} — {lab.title}: {len(done)}/{len(lab.tasks)} tasks done, {points}/{lab.points} points"
    lines = [f"{head}  {bar(points, lab.points, max(10, min(24, 76 - len(head))))}{note}"]
    width = max(len(t.title) for t in lab.tasks)
    for task in lab.tasks:
        state = saved.get(task.key)
        if state is None:
            mark, score, after = "·", f"0/{task.points}", "not run yet"
        elif state.get("done"):
            mark, score, after = "✓", f"{task.points}/{task.points}", ""
        else:
            mark, score, after = "✗", f"0/{task.points}", f"dockerlab hint {lab.id} {task.number}"
        if state is not None and this_run and task.key not in this_run:
            after = (after + "  " if after else "") + "(earlier run)"
        lines.append(f"  {mark} {task.number}. {task.title:<{width}}  {score:>5}  {after}".rstrip())
    return lines


def render_all(root: Path | None = None) -> str:
    """Every lab's table (``dockerlab progress``)."""
    saved = load(root)
    out: list[str] = []
    total = got = 0
    for lab in labinfo.labs(root):
        out.extend(render(lab, saved))
        out.append("")
        total += lab.points
        got += sum(t.points for t in lab.tasks if saved.get(t.key, {}).get("done"))
    out.append(f"all labs: {got}/{total} points  {bar(got, total)}")
    if not saved:
        out.append("(nothing saved yet: run `tox -e lab1` or `dockerlab watch`)")
    return "\n".join(out)
