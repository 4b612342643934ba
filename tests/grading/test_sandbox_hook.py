"""The worker's audit hook on its own, in a plain child process (no bubblewrap, Landlock or seccomp).

Without the kernel layers the child can do what a worker on a kernel without them could:
create symlinks in its scratch, swap them, chdir anywhere. The hook remembers which folders are
real folders (not symlinks) within one call; these tests check that what it remembers never
lets a path through that resolving it afresh would refuse: against ``os.path.realpath`` on
many generated paths, before and after the hook learned them, after symlinks are swapped in
(by the child in its scratch, by the grader in a root between calls), and through ``..``.
They also check that student code cannot reach the hook's state.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockerlab.grading import sandbox_main

SOURCE = Path(sandbox_main.__file__)

CHILD = textwrap.dedent('''
    import importlib.util, json, os, sys
    spec = importlib.util.spec_from_file_location("sandbox_main", sys.argv[1])
    sm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sm)
    cfg = json.loads(sys.stdin.readline())
    os.chdir(cfg["scratch"])
    sm._guard(cfg["scratch"], cfg["readable"])
    call_event = sm.CALL_EVENT
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "read":
                open(cmd["path"], "rb").close()
            elif cmd["op"] == "list":
                os.listdir(cmd["path"])
            elif cmd["op"] == "call":
                sys.audit(call_event)
            elif cmd["op"] == "exec":
                exec(cmd["code"], {"__name__": "student"})
            result = "ok"
        except BaseException as exc:
            result = "refused" if "grading sandbox" in str(exc) else type(exc).__name__
        print(json.dumps(result), flush=True)
''')


class Child:
    """A process running only the hook: ``read(path)`` → ``ok`` / ``refused`` / an OSError's name."""

    def __init__(self, scratch: Path, readable: list[Path]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", CHILD, str(SOURCE)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self._send({"scratch": str(scratch), "readable": [str(p) for p in readable]}, answer=False)

    def _send(self, cmd: dict, answer: bool = True) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        if not answer:
            return ""
        line = self.proc.stdout.readline()
        assert line, "the child died"
        return json.loads(line)

    def read(self, path: str | Path) -> str:
        return self._send({"op": "read", "path": str(path)})

    def list(self, path: str | Path) -> str:
        return self._send({"op": "list", "path": str(path)})

    def call(self) -> None:
        """What the worker does before each call: forget the learned folders."""
        self._send({"op": "call"})

    def run(self, code: str) -> str:
        return self._send({"op": "exec", "code": textwrap.dedent(code)})

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def tree(tmp_path: Path):
    """``root`` (read-only to the child), ``scratch`` (its own), ``secret`` (neither), with symlinks."""
    root, scratch, secret = tmp_path / "root", tmp_path / "scratch", tmp_path / "secret"
    for d in (root / "a" / "b", root / "l", scratch / "d", secret / "a" / "b"):
        d.mkdir(parents=True)
    for f in (root / "a" / "b" / "file", root / "a" / "file", scratch / "d" / "file", secret / "file",
              secret / "a" / "b" / "file", secret / "a" / "file"):
        f.write_text("x")
    links = {
        root / "l" / "x": "../a", root / "l" / "up": "../../secret", root / "l" / "abs": str(secret),
        root / "a" / "b" / "back": "../../l", root / "chain1": "chain2", root / "chain2": "a",
        root / "a" / "deep": "b/../../l/x", scratch / "ls": str(root / "a"), scratch / "esc": str(secret),
        scratch / "d" / "up": "../../secret/a", root / "a" / "b" / "leak": str(secret / "file"),
        root / "l" / "fine": "../a/file", scratch / "d" / "leak": "../../secret/file",
    }
    for link, target in links.items():
        link.symlink_to(target)
    child = Child(scratch, [root])
    yield root, scratch, secret, child
    child.close()


def _allowed(path: str, scratch: Path, dirs: list[Path]) -> bool:
    real = os.path.realpath(os.path.join(scratch, path))
    return any(real == str(d) or real.startswith(str(d) + "/") for d in dirs)


def test_decisions_match_realpath_before_and_after_the_hook_learned_them(tree):
    root, scratch, secret, child = tree
    names = ["a", "b", "file", "l", "x", "up", "abs", "back", "chain1", "deep", "d", "ls", "esc", "..", ".", "nope",
             "secret", "root", "scratch"]
    rng = random.Random(1)
    paths = []
    for _ in range(1000):
        start = rng.choice([str(root), str(scratch), str(root.parent), ""])
        parts = [rng.choice(names) for _ in range(rng.randint(0, 4))] + [rng.choice(["file", "b/file", "a/file", "leak", "b/leak", "fine"])]
        paths.append("/".join([start, *parts]) if start else "/".join(parts))
    for round_ in ("first", "learned", "after a call"):
        if round_ == "after a call":
            child.call()
        wrong = []
        for path in paths:
            got = child.read(path)
            want = _allowed(path, scratch, [root, scratch])
            if (got == "refused") == want:
                wrong.append((path, got, os.path.realpath(os.path.join(scratch, path))))
        assert not wrong, f"{round_}: {wrong[:5]}"
    assert sum(child.read(p) == "ok" for p in paths) > 10  # the sample really reaches files
    assert sum(child.read(p) == "refused" for p in paths) > 20


def test_a_folder_in_scratch_swapped_for_a_symlink_is_followed(tree):
    root, scratch, secret, child = tree
    assert child.read(scratch / "d" / "file") == "ok"
    assert child.read(scratch / "d" / "a" / "file") == "FileNotFoundError"  # under d: never remembered
    assert child.run(f'''
        import os
        os.rename({str(scratch / "d")!r}, {str(scratch / "d2")!r})
        os.chdir({str(scratch / "d2")!r})  # the hook reads a link's target from here: scratch/secret
        os.symlink("../secret", {str(scratch / "d")!r})
        os.chdir({str(scratch)!r})
    ''') == "ok"
    assert (scratch / "d").is_symlink()
    assert child.read(scratch / "d" / "file") == "refused"
    assert child.read(scratch / "d" / "a" / "file") == "refused"
    assert child.read("d/file") == "refused"


def test_a_root_folder_swapped_for_a_symlink_between_calls_is_followed(tree):
    """The grader never does this, but a remembered folder must not outlive the call."""
    root, scratch, secret, child = tree
    assert child.read(root / "a" / "b" / "file") == "ok"
    assert child.list(root / "a" / "b") == "ok"
    (root / "a").rename(root / "a2")
    (root / "a").symlink_to(secret)
    child.call()
    assert child.read(root / "a" / "b" / "file") == "refused"
    assert child.list(root / "a" / "b") == "refused"
    (root / "a").unlink()  # and gone altogether: a missing folder is no way out either
    child.call()
    assert child.read(root / "a" / "b" / "file") == "FileNotFoundError"
    assert child.read(root / "a" / ".." / ".." / "secret" / "file") == "refused"


def test_a_folder_outside_the_read_only_ones_is_never_remembered(tree):
    """Others may change it at any time, even during a call."""
    root, scratch, secret, child = tree
    outside = root.parent / "outside"
    (outside / "x").mkdir(parents=True)
    via = str(outside / "x") + "/../../root/a/file"  # root/a/file while x is a folder
    assert child.read(via) == "ok"
    (outside / "x").rmdir()
    (outside / "x").symlink_to(secret / "a" / "b")  # now secret/a/b/../../root/a/file
    assert child.read(via) == "refused"


def test_dotdot_after_a_symlink_goes_up_from_its_target(tree):
    root, scratch, secret, child = tree
    for _ in range(2):  # and again once the folders are remembered
        assert child.read(root / "l" / "x" / "file") == "ok"
        assert child.read(root / "l" / "up" / "file") == "refused"
        assert child.read(root / "l" / "abs" / "a" / "file") == "refused"
        assert child.read(root / "a" / "b" / "back" / "up" / "a" / "b" / "file") == "refused"
        assert child.read(root / "a" / "b" / "back" / ".." / ".." / "secret" / "file") == "refused"
        assert child.read(root / "a" / "deep" / "b" / "file") == "ok"
        assert child.read(scratch / "d" / "up" / "file") == "refused"
        assert child.read(scratch / "ls" / ".." / ".." / "secret" / "file") == "refused"
        assert child.read(str(scratch / "ls") + "/../a/b/file") == "ok"
        assert child.read(root / "a" / "b" / "leak") == "refused"  # the last component is a symlink too
        assert child.read(scratch / "d" / "leak") == "refused"
        assert child.read(root / "l" / "fine") == "ok"
        assert child.list(f"{root}/a/b/..") == "ok" and child.list(f"{root}/..") == "refused"
        assert child.list(f"{root}/l/x/..") == "ok" and child.list(f"{root}/l/up/..") == "refused"
        up = "../" * (len(root.parts) + 3)
        assert child.read("/.." + str(root / "a" / "file")) == "ok"
        assert child.read(f"{root}/{up}{str(root / 'a' / 'file')[1:]}") == "ok"
        assert child.read(f"{root}/a/{up}{str(secret / 'file')[1:]}") == "refused"


def test_relative_paths_follow_the_working_directory(tree):
    root, scratch, secret, child = tree
    assert child.read("d/file") == "ok"
    assert child.run(f"import os; os.chdir({str(root / 'a')!r})") == "ok"
    assert child.read("b/file") == "ok"
    assert child.read("../../secret/file") == "refused"
    assert child.run(f"import os; os.chdir({str(secret)!r})") == "ok"
    assert child.read("file") == "refused"
    assert child.read("a/b/file") == "refused"


def test_a_symlink_loop_is_refused(tree):
    root, scratch, secret, child = tree
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    assert child.read(root / "loop1" / "file") == "refused"


def test_writes_relative_to_a_dir_fd_are_refused(tree):
    root, scratch, secret, child = tree
    for call in ('os.mkdir("m", dir_fd=fd)', 'os.symlink("x", "s", dir_fd=fd)', 'os.rename("a", "z", src_dir_fd=fd)',
                 'os.rmdir("l", dir_fd=fd)', 'os.unlink("chain1", dir_fd=fd)'):
        assert child.run(f"import os\nfd = os.open({str(root)!r}, os.O_RDONLY)\n{call}") == "refused", call
    assert child.run('import os\nos.mkdir("m")') == "ok"  # in its scratch, by name: as before
    assert sorted(p.name for p in root.iterdir()) == ["a", "chain1", "chain2", "l"]


def test_student_code_cannot_reach_the_hooks_state(tree):
    root, scratch, secret, child = tree
    path = str(secret / "file")
    # the refusal's traceback holds the hook's frame: its locals are values, none rebindable
    assert child.run(f'''
        try:
            open({path!r})
        except PermissionError as exc:
            tb = exc.__traceback__
            while tb.tb_next:
                tb = tb.tb_next
            leaked = tb.tb_frame.f_locals
        kinds = {{type(v).__name__ for v in leaked.values()}}
        assert "function" not in kinds and "dict" not in kinds and "set" not in kinds, kinds
        for value in leaked.values():
            assert not hasattr(value, "__closure__") and not hasattr(value, "__code__"), value
    ''') == "ok"
    for grab in ("import gc; gc.get_objects()", "import gc; gc.get_referrers(open)",
                 "import gc; gc.get_referents(open)", "import sys; sys._current_frames()"):
        assert child.run(grab) == "refused", grab
    # a path whose methods run student code: read without calling them
    assert child.run(f'''
        import sys
        class Sly(str):
            calls = 0
            def startswith(self, *a):
                Sly.calls += 1
                return True
            def __str__(self):
                Sly.calls += 1
                return {str(root / "a" / "file")!r}
            def split(self, *a):
                Sly.calls += 1
                return ["", "tmp"]
        try:
            open(Sly({path!r}))
            raise SystemExit("read")
        except PermissionError:
            pass
        assert Sly.calls == 0, Sly.calls
    ''') == "ok"
    assert child.read(path) == "refused"
