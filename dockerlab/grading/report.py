"""From recorded outcomes to scores: ``results.json`` (Gradescope), ``feedback.md`` and ``grades.csv``.

A task scores its full points when every one of its collected tests passed, else 0 (the same
rule as the summary of ``tox -e lab1``). Feedback shows what was wrong and the hint, never an
expected answer: the harness's ``expected:`` line is dropped, full sha256 ids are shortened,
and hidden seeds are not named.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from dockerlab.labinfo import Task
from dockerlab.labinfo import lab as lab_info

__all__ = ["StudentResult", "TaskResult", "sanitize", "score", "write_csv", "write_student"]

_MAX_OUTPUT = 1500


@dataclass
class TaskResult:
    """One task of one student: points earned and what to tell them."""

    task: Task
    score: int
    passed: bool
    messages: list[str] = field(default_factory=list)


@dataclass
class StudentResult:
    """Every graded task of one student, and a note when their run did not finish."""

    student: str
    tasks: list[TaskResult]
    note: str = ""

    @property
    def total(self) -> int:
        return sum(t.score for t in self.tasks)

    @property
    def max(self) -> int:
        return sum(t.task.points for t in self.tasks)


def sanitize(message: str) -> str:
    """A failure message fit for the student: no expected value, no full ids, no hidden seed.

    The hint line is dropped too: the feedback shows each task's hint once.
    """
    lines = [line for line in message.splitlines() if not line.strip().startswith(("expected:", "hint:"))]
    text = "\n".join(lines)
    text = re.sub(r"\b([a-f0-9]{12})[a-f0-9]{52}\b", r"\1…", text)
    text = re.sub(r"seed=\d+", "seed=hidden", text)
    text = re.sub(r"hidden-\d+", "hidden", text)
    return text[:_MAX_OUTPUT] + ("…" if len(text) > _MAX_OUTPUT else "")


def _records(path: Path) -> tuple[dict[str, int], list[dict]]:
    collected: dict[str, int] = {}
    records: list[dict] = []
    if not path.exists():
        return collected, records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if "collected" in data:
            collected.update(data["collected"])  # one line per lab's run
        elif "task" in data:
            records.append(data)
    return collected, records


def score(student: str, labs: list[str], results_file: Path, note: str = "") -> StudentResult:
    """Score ``student`` from the recorder's file; tasks not (fully) run score 0 and say why."""
    collected, records = _records(results_file)
    tasks: list[TaskResult] = []
    for lab_id in labs:
        for task in lab_info(lab_id).tasks:
            mine = [r for r in records if r["task"] == task.key]
            failed = [r for r in mine if r["outcome"] != "passed"]
            complete = bool(mine) and len(mine) >= collected.get(task.key, 1)
            passed = complete and not failed
            messages = [sanitize(r["message"]) or "failed" for r in failed]
            if not complete and not failed:
                messages.append(f"not graded: {note or 'the grading run stopped before this task'}")
            tasks.append(TaskResult(task, task.points if passed else 0, passed, messages))
    return StudentResult(student, tasks, note)


def _output(result: TaskResult) -> str:
    if result.passed:
        return "All checks passed."
    unique = list(dict.fromkeys(result.messages))
    return "\n\n".join(unique[:3]) + f"\n\nHint: {result.task.hint}"


def write_student(result: StudentResult, out: Path) -> None:
    """``out/<student>/results.json`` (Gradescope's schema) and ``feedback.md``."""
    folder = out / result.student
    folder.mkdir(parents=True, exist_ok=True)
    tests = [
        {
            "name": f"{t.task.lab} task {t.task.number}: {t.task.title}",
            "score": t.score,
            "max_score": t.task.points,
            "status": "passed" if t.passed else "failed",
            "output": _output(t),
            "visibility": "visible",
        }
        for t in result.tasks
    ]
    payload = {"score": result.total, "tests": tests}
    if result.note:
        payload["output"] = result.note
    (folder / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [f"# Feedback for {result.student}", "", f"**{result.total} / {result.max} points**", ""]
    if result.note:
        lines += [f"> {result.note}", ""]
    for t in result.tasks:
        mark = "✓" if t.passed else "✗"
        lines.append(f"## {mark} {t.task.lab} task {t.task.number}: {t.task.title} — {t.score}/{t.task.points}")
        lines.append("")
        if t.passed:
            lines += ["Passed.", ""]
            continue
        for message in list(dict.fromkeys(t.messages))[:3]:
            lines += ["```", message, "```", ""]
        lines += [f"**Hint:** {t.task.hint}", ""]
    (folder / "feedback.md").write_text("\n".join(lines), encoding="utf-8")


def write_csv(results: list[StudentResult], labs: list[str], path: Path) -> None:
    """``grades.csv``: student, one column per task, total, max, note."""
    keys = [t.key for lab_id in labs for t in lab_info(lab_id).tasks]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *keys, "total", "max", "note"])
        for r in sorted(results, key=lambda r: r.student):
            by_key = {t.task.key: t.score for t in r.tasks}
            writer.writerow([r.student, *(by_key.get(k, 0) for k in keys), r.total, r.max, r.note])
