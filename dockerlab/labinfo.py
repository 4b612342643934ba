"""The labs and their tasks, as ``labs/info.toml`` lists them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Lab", "Task", "labs", "lab", "repo_root", "task_passed"]


@dataclass(frozen=True)
class Task:
    """One task of a lab: what the student writes, for how many points, and a hint."""

    lab: str
    number: int
    title: str
    points: int
    functions: tuple[str, ...]
    hint: str

    @property
    def key(self) -> str:
        """``lab1.task3``: the name of the task in gradebooks."""
        return f"{self.lab}.task{self.number}"


@dataclass(frozen=True)
class Lab:
    """A lab: its module under ``labs/`` (mirrored in ``solutions/``) and its tasks."""

    id: str
    title: str
    module: str
    tasks: tuple[Task, ...]

    @property
    def points(self) -> int:
        """Total points of the lab."""
        return sum(t.points for t in self.tasks)

    def task(self, number: int) -> Task:
        """Task ``number``; a clear error for one that does not exist."""
        for task in self.tasks:
            if task.number == number:
                return task
        raise KeyError(f"{self.id} has tasks 1 to {len(self.tasks)}, not {number}")


def repo_root() -> Path:
    """The course repository: ``$DOCKERLAB_REPO``, else the directory holding this package."""
    if os.environ.get("DOCKERLAB_REPO"):
        return Path(os.environ["DOCKERLAB_REPO"])
    return Path(__file__).resolve().parent.parent


@lru_cache(maxsize=None)
def _load(path: Path) -> tuple[Lab, ...]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    out = []
    for entry in data["labs"]:
        tasks = tuple(
            Task(
                lab=entry["id"],
                number=t["number"],
                title=t["title"],
                points=t["points"],
                functions=tuple(t["functions"]),
                hint=" ".join(t["hint"].split()),
            )
            for t in entry["tasks"]
        )
        out.append(Lab(entry["id"], entry["title"], entry["module"], tasks))
    return tuple(out)


def labs(root: Path | None = None) -> tuple[Lab, ...]:
    """Every lab, in course order."""
    return _load((root or repo_root()) / "labs" / "info.toml")


def lab(lab_id: str, root: Path | None = None) -> Lab:
    """The lab called ``lab_id`` (``lab1``); a clear error naming the known labs otherwise."""
    for entry in labs(root):
        if entry.id == lab_id:
            return entry
    known = ", ".join(x.id for x in labs(root))
    raise KeyError(f"no lab {lab_id!r}; the labs are {known}")


def task_passed(outcomes: Iterable[str], tests: int) -> bool:
    """THE scoring rule, shared by ``tox -e labN``'s summary and the grader.

    ``outcomes`` holds one final outcome per test of the task that ran (``"passed"``,
    ``"failed"``, ``"skipped"``, ``"error"``…); ``tests`` is how many tests the task has. The
    task is done, and earns all its points, only when every one of its tests ran and passed:
    a skipped test, a test that did not run and a task without tests never award anything.
    """
    outcomes = list(outcomes)
    return tests > 0 and len(outcomes) >= tests and all(o == "passed" for o in outcomes)
