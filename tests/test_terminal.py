"""The student's loop in a real terminal: tmux runs the commands, we read the screen.

Skipped without tmux; CI's step ``.ci/steps/45-terminal.sh`` installs it and runs this file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dockerlab import labinfo

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt install tmux)")


class Pane:
    """One tmux session on a private server socket, ``width`` × ``height``."""

    def __init__(self, command: str, width: int, height: int, env: dict[str, str]) -> None:
        self.socket = f"dockerlab-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # keep the pane after the command ends, so its last screen can be read
        script = f"cd {shlex.quote(str(REPO))} && env {exports} {command}; echo '<<exit>>'; sleep 3600"
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width),
                        "-y", str(height), "bash", "--norc", "--noprofile", "-c", script], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "t"],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "t", *keys], check=True)

    def wait_for(self, text: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in flat(screen):
                return screen
            time.sleep(0.5)
        pytest.fail(f"{text!r} did not appear within {timeout:.0f} s; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def flat(screen: str) -> str:
    """The screen's words, one space apart: what it says, whatever the line wrapping."""
    return " ".join(screen.split())


@pytest.fixture
def course(tmp_path):
    """A checkout of the labs (the stubs) of our own: progress is saved there, not in the repo."""
    shutil.copytree(REPO / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.fixture
def env(course):
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKERLAB_CACHE", "XDG_CACHE_HOME", "LANG", "LC_ALL")}
    keep.setdefault("LANG", "C.UTF-8")
    keep.update(DOCKERLAB_REPO=str(course), TERM="xterm-256color")
    return keep


@pytest.mark.skipif(shutil.which("tox") is None, reason="needs tox")
def test_the_first_screen_of_tox_lab1_on_the_stubs_ends_with_the_progress_table(env):
    pane = Pane("tox -e lab1", 80, 60, env)
    try:
        screen = pane.wait_for("<<exit>>", timeout=900)
    finally:
        pane.close()
    rows = screen.rstrip("\n").splitlines()
    lab = labinfo.lab("lab1")
    assert any(row.startswith("lab1: commands[0]>") for row in rows), f"the run does not fit on one 60-line screen:\n{screen}"
    header = next(i for i, row in enumerate(rows) if row.startswith("lab1 — The layer DB: 0/6 tasks done"))
    table = rows[header + 1: header + 1 + len(lab.tasks)]
    assert [row.split(".")[0].strip() for row in table] == [f"✗ {t.number}" for t in lab.tasks], screen
    after = [row for row in rows[header + 1 + len(lab.tasks):] if row.strip() and row != "<<exit>>"]
    # tox's own status lines (the first may wrap on a long path), nothing of pytest's
    assert after and after[0].startswith("lab1: exit 1") and len(after) <= 5, screen
    assert "evaluation failed" in after[-1], screen
    assert "short test summary" not in screen


def test_watch_shows_one_task_hides_the_hint_on_h_celebrates_and_quits_on_q(course, env):
    pane = Pane(f"{shlex.quote(sys.executable)} -m dockerlab watch lab1", 100, 50, env)
    try:
        screen = flat(pane.wait_for("q: quit"))
        assert "Task 1: An image's layer ids" in screen and "raised NotImplementedError" in screen
        assert "hint: Names live in" in screen and "0/6 tasks" in screen
        assert "Task 2:" not in screen  # one task at a time
        pane.keys("h")
        screen = flat(pane.wait_for("h: show hint"))
        assert "hint: Names live in" not in screen
        started = time.monotonic()
        shutil.copy(REPO / "solutions" / "lab1" / "layerdb.py", course / "labs" / "lab1" / "layerdb.py")
        screen = flat(pane.wait_for("All done", timeout=300))
        print(f"save -> celebration: {time.monotonic() - started:.1f} s")
        assert "100/100 points" in screen and "6/6 tasks" in screen
        pane.keys("q")
        pane.wait_for("<<exit>>", timeout=30)
    finally:
        pane.close()
