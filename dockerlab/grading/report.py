"""From recorded outcomes to scores: ``results.json`` (Gradescope), ``feedback.md`` and ``grades.csv``.

A task scores its full points when every one of its collected tests passed, else 0 (the same
rule as the summary of ``tox -e lab1``). Feedback shows what was wrong and the hint, never an
expected answer: the harness's ``expected:`` line is dropped, full sha256 ids are shortened,
hidden seeds, the secret and the grader's own paths are masked.

Feedback is safe to render whatever a student's exception said: control characters and
terminal escape sequences are removed, every message is an indented code block in
``feedback.md`` (no fence to close, no Markdown or HTML rendered inside), ``<``/``>`` are
escaped in ``results.json`` (whose ``output_format`` is ``text``), and lengths are capped.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dockerlab.labinfo import Task, task_passed
from dockerlab.labinfo import lab as lab_info

__all__ = ["StudentResult", "TaskResult", "no_tasks", "parse_records", "sanitize", "score", "write_csv",
           "write_student"]

_MAX_OUTPUT = 1500  #: characters of one message in the feedback
_MAX_LINES = 30  #: lines of one message in the feedback
_MAX_NOTE = 300
#: ESC/CSI/OSC sequences, then every other control character but newline and tab.
_ESCAPES = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


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


def clean(text: str) -> str:
    """``text`` without terminal escapes, control or bidi characters (newlines and tabs kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def sanitize(message: str, masks: list[str] | tuple[str, ...] = ()) -> str:
    """A failure message fit for the student: no expected value, no full ids, no hidden seed.

    The hint line is dropped too: the feedback shows each task's hint once. ``masks`` are
    strings never to show (the secret, hidden seeds, the grader's paths).
    """
    text = clean(str(message))
    for mask in sorted((m for m in masks if m and len(m) >= 4), key=len, reverse=True):
        if mask.startswith("/"):  # a folder of the grader's: the whole path under it goes
            text = re.sub(re.escape(mask) + r"[^\s'\"),\]}>]*", "<path>", text)
        text = text.replace(mask, "<hidden>")
    lines = [line for line in text.splitlines() if not line.strip().startswith(("expected:", "hint:"))]
    text = "\n".join(lines[:_MAX_LINES]) + ("\n…" if len(lines) > _MAX_LINES else "")
    text = re.sub(r"\b([a-f0-9]{12})[a-f0-9]{52}\b", r"\1…", text)
    text = re.sub(r"seed=\d+", "seed=hidden", text)
    text = re.sub(r"hidden-\d+", "hidden", text)
    text = re.sub(r"/[^\s'\"]*dockerlab-grade-[^\s'\"),\]}>]*", "<path>", text)
    text = re.sub(r"/[^\s'\"]*/roots/[0-9a-f]{16}/[0-9a-f]{20}\b[^\s'\"),\]}>]*", "<path>", text)
    text = re.sub(r"\d{12,}", "<number>", text)  # a hidden seed in any other spelling
    return text[:_MAX_OUTPUT] + ("…" if len(text) > _MAX_OUTPUT else "")


def parse_records(data: bytes) -> tuple[dict[str, int], list[dict]]:
    """The recorder's lines: the collected tests per task, and one record per test."""
    collected: dict[str, int] = {}
    records: list[dict] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("collected"), dict):
            collected.update({str(k): v for k, v in item["collected"].items() if isinstance(v, int)})  # one line per lab's run
        elif isinstance(item.get("task"), str) and isinstance(item.get("outcome"), str):
            records.append({"task": item["task"], "outcome": item["outcome"], "message": str(item.get("message", ""))})
    return collected, records


def no_tasks(labs: list[str]) -> list[TaskResult]:
    """Every task of ``labs`` at 0 points (a submission that was not graded)."""
    return [TaskResult(task, 0, False, []) for lab_id in labs for task in lab_info(lab_id).tasks]


def score(student: str, labs: list[str], outcomes: tuple[dict[str, int], list[dict]] | Path, note: str = "") -> StudentResult:
    """Score ``student`` from the recorder's outcomes (see :func:`parse_records`, or its file).

    Tasks not (fully) run score 0 and say why.
    """
    if isinstance(outcomes, Path):
        outcomes = parse_records(outcomes.read_bytes() if outcomes.exists() else b"")
    collected, records = outcomes
    tasks: list[TaskResult] = []
    for lab_id in labs:
        for task in lab_info(lab_id).tasks:
            mine = [r for r in records if r["task"] == task.key]
            failed = [r for r in mine if r["outcome"] != "passed"]
            complete = bool(mine) and len(mine) >= collected.get(task.key, 0)
            passed = task_passed((r["outcome"] for r in mine), collected.get(task.key, 0))  # THE rule
            messages = [r["message"] or "failed" for r in failed]
            if not complete and not failed:
                messages.append(f"not graded: {note or 'the grading run stopped before this task'}")
            tasks.append(TaskResult(task, task.points if passed else 0, passed, messages))
    return StudentResult(student, tasks, note)


#: Names of what the grader writes at the top of its output folder: never a student's folder.
RESERVED = frozenset({"grades.csv", "grades.csv.tmp"})


def _messages(result: TaskResult, masks: list[str]) -> list[str]:
    unique = list(dict.fromkeys(sanitize(m, masks) or "failed" for m in result.messages))
    return unique[:3]


def _no_html(text: str) -> str:
    return text.replace("<", "\u2039").replace(">", "\u203a")


def _output(result: TaskResult, masks: list[str]) -> str:
    if result.passed:
        return "All checks passed."
    return _no_html("\n\n".join(_messages(result, masks)) + f"\n\nHint: {result.task.hint}")


def _block(text: str) -> list[str]:
    """``text`` as an indented Markdown code block: nothing inside is rendered, nothing closes it."""
    return ["    " + line for line in text.splitlines() or [""]]


def write_student(result: StudentResult, out: Path, masks: list[str] | tuple[str, ...] = ()) -> None:
    """``out/<student>/results.json`` (Gradescope's schema) and ``feedback.md``."""
    from .submissions import valid_id

    if not valid_id(result.student) or result.student.casefold() in RESERVED:
        raise ValueError("not a student id the grader writes feedback for")
    masks = list(masks)
    note = clean(sanitize(result.note, masks)).replace("\n", " ")[:_MAX_NOTE]
    folder = out / result.student
    folder.mkdir(parents=True, exist_ok=True)
    tests = [
        {
            "name": f"{t.task.lab} task {t.task.number}: {t.task.title}",
            "score": t.score,
            "max_score": t.task.points,
            "status": "passed" if t.passed else "failed",
            "output": _output(t, masks),
            "visibility": "visible",
        }
        for t in result.tasks
    ]
    payload: dict = {"score": result.total, "output_format": "text", "tests": tests}
    if note:
        payload["output"] = _no_html(note)
    (folder / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [f"# Feedback for {result.student}", "", f"**{result.total} / {result.max} points**", ""]
    if note:
        lines += ["Note from the grader:", "", *_block(note), ""]
    for t in result.tasks:
        mark = "✓" if t.passed else "✗"
        lines.append(f"## {mark} {t.task.lab} task {t.task.number}: {t.task.title} — {t.score}/{t.task.points}")
        lines.append("")
        if t.passed:
            lines += ["Passed.", ""]
            continue
        for message in _messages(t, masks):
            lines += [*_block(message), ""]
        lines += [f"**Hint:** {t.task.hint}", ""]
    (folder / "feedback.md").write_text("\n".join(lines), encoding="utf-8")


def write_csv(results: list[StudentResult], labs: list[str], path: Path, mode: str = "") -> None:
    """``grades.csv``: student, one column per task, total, max, note (which names the sandbox mode).

    Written to a temporary sibling and renamed, so an interrupted run never leaves half a file.
    """
    keys = [t.key for lab_id in labs for t in lab_info(lab_id).tasks]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *keys, "total", "max", "note"])
        for r in sorted(results, key=lambda r: r.student):
            by_key = {t.task.key: t.score for t in r.tasks}
            note = clean(r.note).replace("\n", " ")[:_MAX_NOTE]
            note = "; ".join(x for x in (f"sandbox: {mode}" if mode else "", note) if x)
            student = r.student if not r.student[:1] in ("=", "+", "-", "@") else "'" + r.student
            writer.writerow([student, *(by_key.get(k, 0) for k in keys), r.total, r.max, note])
    os.replace(tmp, path)
