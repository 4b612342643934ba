"""``dockerlab watch [labN]``: the lab re-run on every save, one task at a time (like rustlings).

The screen shows the first unfinished task of the lab: its failure, its hint and the progress
bar. Every save under ``labs/`` re-runs that task's tests (a fresh ``pytest`` process, so a
broken or looping file cannot hurt the watcher); when the task passes, the whole lab runs again
and the next unfinished task comes up. Keys: ``q`` quits, ``h`` shows or hides the hint, ``r``
re-runs. Progress is saved as by ``tox -e labN``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakeroot_builder.errors import DockerLabError

from . import labinfo, progress
from .display import shorten_ids

__all__ = ["Session", "register"]

CLEAR = "\x1b[2J\x1b[H"


def _tests_dir() -> Path:
    """The graded tests: ``tests/`` next to the ``dockerlab`` package (the course checkout)."""
    here = Path(__file__).resolve().parent.parent
    for base in (labinfo.repo_root(), here):
        if (base / "tests" / "conftest.py").exists():
            return base / "tests"
    raise DockerLabError(f"no tests/ next to {labinfo.repo_root()}: run dockerlab watch in the course repository")


def _python() -> str:
    """An interpreter with pytest and pyfakefs: this one, else tox's environment of the lab."""
    try:
        import pyfakefs  # noqa: F401
        import pytest  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    for env in sorted((labinfo.repo_root() / ".tox").glob("lab*")):
        for candidate in (env / "bin" / "python", env / "Scripts" / "python.exe"):
            if candidate.exists():
                return str(candidate)
    raise DockerLabError("pytest is not installed here: run `tox -e lab1` once (or pip install -e '.[test]')")


@dataclass
class Result:
    """One run: each task's verdict and first failure (``dockerlab.pytest_report``'s JSON)."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


class Session:
    """The state of one ``watch``: which lab, the last results, and how to run the tests."""

    def __init__(self, lab: labinfo.Lab, python: str | None = None) -> None:
        self.lab = lab
        self.python = python or _python()
        self.tests = _tests_dir()
        self.show_hint = True
        self.results: dict[str, dict[str, Any]] = {}
        self.proc: subprocess.Popen[str] | None = None

    def run(self, task: labinfo.Task | None = None, interrupt: threading.Event | None = None) -> Result:
        """Run the lab's graded tests (only ``task``'s when given).

        The run stops early when ``interrupt`` is set (a new save, or ``q``): an endless loop in
        the student's code must not freeze the watcher.
        """
        with tempfile.TemporaryDirectory(prefix="dockerlab-watch-") as tmp:
            out = Path(tmp) / "report.json"
            log = Path(tmp) / "output.txt"
            cmd = [self.python, "-m", "pytest", str(self.tests / f"test_{self.lab.id}.py"), "--impl", "labs",
                   "-q", "--no-header", "-p", "no:cacheprovider"]
            if task is not None:
                cmd += ["-k", f"{self.lab.id}_task{task.number}"]
            env = dict(os.environ, DOCKERLAB_REPORT_JSON=str(out), PYTHONDONTWRITEBYTECODE="1")
            env.pop("PYTEST_ADDOPTS", None)
            start = time.monotonic()
            with open(log, "w", encoding="utf-8") as sink:
                self.proc = subprocess.Popen(cmd, cwd=self.tests.parent, env=env, stdout=sink,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
                while self.proc.poll() is None:
                    if interrupt is not None and interrupt.is_set():
                        self.proc.kill()
                    time.sleep(0.02)
            code, self.proc = self.proc.returncode, None
            result = Result(seconds=time.monotonic() - start)
            if out.exists():
                result.tasks = json.loads(out.read_text(encoding="utf-8"))
            elif interrupt is not None and interrupt.is_set():
                result.error = "stopped"
            else:
                output = log.read_text(encoding="utf-8", errors="replace")
                result.error = output.strip()[-2000:] or f"pytest exited with status {code}"
        for key, value in result.tasks.items():
            self.results[key] = value
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def saved(self) -> dict[str, dict[str, Any]]:
        return progress.load()

    def current(self) -> labinfo.Task | None:
        """The first task of the lab that is not done (by the saved progress)."""
        saved = self.saved()
        for task in self.lab.tasks:
            if not saved.get(task.key, {}).get("done"):
                return task
        return None

    def screen(self, result: Result, width: int = 100) -> str:
        """What the terminal shows after a run."""
        saved = self.saved()
        done = [t for t in self.lab.tasks if saved.get(t.key, {}).get("done")]
        points = sum(t.points for t in done)
        lines = [f"dockerlab watch — {self.lab.id}: {self.lab.title}",
                 f"{progress.bar(points, self.lab.points, 40)} {len(done)}/{len(self.lab.tasks)} tasks, "
                 f"{points}/{self.lab.points} points", ""]
        task = self.current()
        if result.error:
            lines += ["The tests could not run:", "", result.error, ""]
        elif task is None:
            lines += [
                "  ★ ★ ★  All done!  ★ ★ ★",
                "",
                f"  Every task of {self.lab.id} passes on every tree: {self.lab.points}/{self.lab.points} points.",
            ]
            later = [lab for lab in labinfo.labs() if lab.id != self.lab.id
                     and any(not saved.get(t.key, {}).get("done") for t in lab.tasks)]
            if later:
                lines.append(f"  Next: the handout of {later[0].id} (labs/{later[0].id}/README.md), then `dockerlab watch {later[0].id}`.")
            lines.append("")
        else:
            info = self.results.get(task.key, {})
            lines.append(f"Task {task.number}: {task.title}   ({task.points} points; write {', '.join(task.functions)})")
            lines.append("")
            failures = info.get("failures") or []
            if failures:
                message = shorten_ids(failures[0])
                body, _, hint = message.partition("\n  hint: ")
                lines += body.splitlines()
                more = int(info.get("failed", 1)) - 1
                if more > 0:
                    lines.append(f"  … and {more} more failing test{'s' if more > 1 else ''} of this task")
            elif info.get("verdict") is None and info:
                lines.append("  Some of this task's tests did not run (see tox -e " + self.lab.id + ").")
            else:
                lines.append("  Not run yet.")
            lines.append("")
            if self.show_hint:
                lines.append(f"hint: {task.hint}")
                lines.append("")
        lines.append(f"[{time.strftime('%H:%M:%S')}, {result.seconds:.1f}s]  Save a file under labs/ to re-run."
                     f"  h: {'hide' if self.show_hint else 'show'} hint · r: re-run · q: quit")
        import textwrap

        wrapped: list[str] = []
        for line in lines:
            indent = len(line) - len(line.lstrip())
            wrapped += textwrap.wrap(line, width, subsequent_indent=" " * (indent + 4), break_long_words=False,
                                     break_on_hyphens=False) or [""]
        return "\n".join(wrapped)


def _keys(events: queue.Queue[tuple[str, str]], stop: threading.Event, interrupt: threading.Event) -> None:
    """Single key presses from a terminal (no Enter needed), as ("key", k) events."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                key = os.read(fd, 1).decode(errors="replace")
                if not key:
                    break
                if key in ("q", "Q", "\x04"):
                    interrupt.set()
                events.put(("key", key))
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _files(events: queue.Queue[tuple[str, str]], stop: threading.Event, where: Path, interrupt: threading.Event) -> None:
    from watchfiles import watch

    for changes in watch(where, stop_event=stop, step=30, debounce=400,
                         watch_filter=lambda _, p: p.endswith((".py", ".toml"))):
        interrupt.set()  # a run of the old code is stale: stop it
        events.put(("save", ",".join(sorted(p for _, p in changes))))


def watch(lab_id: str | None = None, plain: bool = False) -> int:
    """The watch loop; returns when ``q`` is pressed (or on Ctrl-C)."""
    if lab_id is None:
        saved = progress.load()
        pending = [lab for lab in labinfo.labs() if any(not saved.get(t.key, {}).get("done") for t in lab.tasks)]
        lab = pending[0] if pending else labinfo.labs()[0]
    else:
        lab = labinfo.lab(lab_id)
    session = Session(lab)
    labs_dir = labinfo.repo_root() / "labs"
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a kill also stops the test run it started
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    stop = threading.Event()
    interrupt = threading.Event()
    threading.Thread(target=_files, args=(events, stop, labs_dir, interrupt), daemon=True).start()
    interactive = not plain and sys.stdin.isatty()
    if interactive:
        threading.Thread(target=_keys, args=(events, stop, interrupt), daemon=True).start()

    def show(result: Result) -> None:
        width = shutil.get_terminal_size((100, 40)).columns - 1
        text = session.screen(result, width)
        if plain:
            print(text + f"\n=== result {time.time():.3f}", flush=True)
        else:
            sys.stdout.write(CLEAR + text + "\n")
            sys.stdout.flush()

    def run_lab() -> Result:
        """The task on screen first; when it passes, the whole lab, to find the next one."""
        interrupt.clear()
        task = session.current()
        result = session.run(task, interrupt)
        if task is not None and not result.error and result.tasks.get(task.key, {}).get("verdict"):
            if not plain:
                sys.stdout.write(f"{CLEAR}✓ Task {task.number} ({task.title}) passes on every tree!\n\n"
                                 f"Running the rest of {lab.id} to find your next task…\n")
                sys.stdout.flush()
            result = session.run(None, interrupt)
        return result

    if not plain:
        sys.stdout.write(CLEAR + f"dockerlab watch — {lab.id}: running the tests…\n")
        sys.stdout.flush()
    result = session.run(None, interrupt)
    if not result.error == "stopped":
        show(result)
    try:
        while True:
            kind, value = events.get()
            if kind == "key" and value in ("q", "Q", "\x04"):
                break
            if kind == "key" and value in ("h", "H"):
                session.show_hint = not session.show_hint
                show(result)
                continue
            if kind == "save" or (kind == "key" and value in ("r", "R")):
                while not events.empty():  # several saves at once: one run
                    pending = events.get_nowait()
                    if pending[0] == "key" and pending[1] in ("q", "Q"):
                        return 0
                result = run_lab()
                if result.error == "stopped":  # a newer save (or q) is queued: handle it next
                    continue
                show(result)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        session.stop()
        if not plain:
            print()
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    return watch(args.lab, plain=args.plain)


def register(sub: argparse._SubParsersAction) -> None:
    ids = ", ".join(lab.id for lab in labinfo.labs())
    p = sub.add_parser("watch", help="re-run a lab on every save, one task at a time (q quits, h hint)")
    p.add_argument("lab", nargs="?", default=None, help=f"{ids} (default: the first unfinished lab)")
    p.add_argument("--plain", action="store_true", help="no screen clearing or keys: print each result (for scripts)")
    p.set_defaults(func=_cmd_watch)
