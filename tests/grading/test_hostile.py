"""A hostile class, graded once in every sandbox mode this machine supports (bwrap, nobody, plain).

Most hostile students hand in the reference solution plus an attack run at import. Any attack
that succeeds sets ``_PWNED``, which replaces ``image_refs`` with a wrong one: such a student
then loses task 1, so "full marks" proves that every attack of the class failed. Others break
the grader's own inputs (names, deep trees, zips) and must still get their row; and a few try
to read the answer off the test (a root's path, an exception carrying it, an escape sequence
in the feedback). The whole class is bounded: short time budgets, small files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import resource
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest

from dockerlab.grading import grader, sandbox
from dockerlab.grading.grader import Timeouts, grade_class
from dockerlab.labinfo import lab, repo_root
from fakeroot_builder.safety import remove_tree

from test_grader import SECRET, SOLUTION, STUB, points, replace_body, write_student

REPO = repo_root()
LAB1 = lab("lab1")


def _modes() -> list[str]:
    found = []
    for how in ("bwrap", "nobody", "plain"):
        try:
            if sandbox._detect(how).mode == how:
                found.append(how)
        except RuntimeError:
            pass
    return found


MODES = _modes()

PWNED_TAIL = '''
if _PWNED:  # an attack worked: task 1 answers wrong, so full marks prove that none did
    def image_refs(*args):
        return ["pwned"]
'''


def attack(body: str) -> str:
    """The solution, plus ``body`` run at import (it sets ``_PWNED`` when something worked)."""
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return SOLUTION + f"\n_PWNED = False\ntry:\n{indented}\nexcept BaseException:\n    pass\n" + PWNED_TAIL


def escape_attempts(sentinel: Path, class_dir: Path) -> str:
    """Read what no worker may read: answers, the secret, classmates, the grader's files."""
    return f'''
import os, glob
def _try_read(path):
    global _PWNED
    try:
        with open(path, "rb") as fh:
            data = fh.read(1 << 16)
        if data:
            _PWNED = True
    except BaseException:
        pass
for _p in ({str(REPO / "solutions/lab1/layerdb.py")!r}, "/etc/shadow", {str(class_dir / "perfect/labs/lab1/layerdb.py")!r}):
    _try_read(_p)
for _p in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/mem"):
    try:
        with open(_p, "rb") as fh:
            data = fh.read(1 << 20)
        if b"DOCKERLAB_SECRET" in data or {SECRET.encode()!r} in data:
            _PWNED = True
    except BaseException:
        pass
for _pattern in ("/dev/shm/dockerlab-grade-*/students/*/submission/labs/lab1/layerdb.py",
                 "/tmp/dockerlab-grade-*/students/*/submission/labs/lab1/layerdb.py",
                 "/dev/shm/dockerlab-grade-*/*/roots/*/*/truth.json",
                 "/dev/shm/dockerlab-grade-*/students/*/cache/roots/*/*/truth.json"):
    for _p in glob.glob(_pattern):
        _try_read(_p)
_here = os.path.dirname(os.path.abspath(__file__))
for _up in range(1, 9):
    _try_read(os.path.join(_here, *[".."] * _up, "solutions/lab1/layerdb.py"))
'''


def write_attempts(sentinel: Path, class_dir: Path) -> str:
    """Write where no worker may: scratch (deep, big), /tmp, the class folder, shared roots."""
    return f'''
import os
def _wrote(path, size=1):
    global _PWNED
    try:
        with open(path, "wb") as fh:
            fh.write(b"x" * size)
        _PWNED = True
    except BaseException:
        pass
_wrote(os.path.expanduser("~/big"), 64 << 20)
_wrote({str(sentinel)!r})
_wrote({str(class_dir / "pwned.txt")!r})
_wrote("/tmp/pwned-by-a-student")
try:  # 1100 nested folders (mkdir + chdir), to crash a recursive clean-up
    _start = os.getcwd()
    for _ in range(1100):
        os.mkdir("d")
        os.chdir("d")
    _PWNED = True
except BaseException:
    pass
try:
    os.chdir(_start)
except BaseException:
    pass
_seen = 0
for _top in ("/dev/shm", "/tmp"):
    try:
        for _dirpath, _dirs, _files in os.walk(_top):
            _seen += 1
            if _seen > 300:
                break
            if os.access(_dirpath, os.W_OK):
                _wrote(os.path.join(_dirpath, "planted-by-a-student"))
    except BaseException:
        pass
'''


PROCESS_ATTEMPTS = '''
import os, signal, subprocess, threading, socket
def _ok(fn):
    global _PWNED
    try:
        fn()
        _PWNED = True
    except BaseException:
        pass
_ok(lambda: os._exit(0) if os.fork() == 0 else None)
_ok(lambda: subprocess.Popen(["sleep", "4242"], start_new_session=True))
_ok(lambda: os.posix_spawn("/bin/sleep", ["sleep", "4243"], {}))
_ok(lambda: os.system("sleep 4244 &"))
_ok(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
_ok(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
_ok(lambda: os.setsid())
_ok(lambda: os.chmod(os.path.expanduser("~"), 0o777))
def _kill_everyone():
    for _pid in os.listdir("/proc"):
        if _pid.isdigit() and int(_pid) != os.getpid():
            try:
                os.kill(int(_pid), signal.SIGKILL)
            except BaseException:
                pass
            try:
                _fd = os.pidfd_open(int(_pid))
                signal.pidfd_send_signal(_fd, signal.SIGKILL)
            except BaseException:
                pass
_kill_everyone()
_ok(lambda: os.kill(-1, signal.SIGKILL))
_ok(lambda: os.kill(os.getppid(), signal.SIGKILL))
threading.Thread(target=_kill_everyone, daemon=True).start()
'''


HOOK_ATTEMPTS = f'''
import sys, os, posixpath
for _main in (sys.modules.get("__main__"), sys.modules.get("dockerlab_worker")):
    for _name in ("_BLOCKED_EVENTS", "_WRITE_EVENTS", "_BLOCKED_MODULES", "CALL_EVENT", "_WRITE_FLAGS"):
        try:
            setattr(_main, _name, ())
        except BaseException:
            pass
    try:
        _main._under = lambda *a: True
    except BaseException:
        pass
posixpath.realpath = os.path.realpath = lambda p, **k: "/"
posixpath.abspath = os.path.abspath = lambda p: "/"
for _p in ({str(REPO / "solutions/lab1/layerdb.py")!r},):
    try:
        exec(open(_p).read())
        _PWNED = True
    except BaseException:
        pass
try:
    import solutions.lab1.layerdb
    _PWNED = True
except BaseException:
    pass
try:
    import ctypes
    _PWNED = True
except BaseException:
    pass
_home = os.path.realpath(os.path.expanduser("~"))
def _rebind_closures(values):  # whatever the hook's frame or gc hands out: widen every path it holds
    for _v in list(values):
        for _cell in getattr(_v, "__closure__", None) or ():
            try:
                _c = _cell.cell_contents
                if callable(_c) and getattr(_c, "__name__", "") in ("resolve", "real", "under"):
                    _cell.cell_contents = (lambda *a, **k: True) if _c.__name__ == "under" else (lambda *a, _h=_home: _h)
                elif isinstance(_c, (tuple, frozenset)) and any(isinstance(x, str) and x.startswith("/") for x in _c):
                    _cell.cell_contents = type(_c)(["/", ""])
            except BaseException:
                pass
try:
    open("/etc/hostname")
except BaseException as _exc:  # the refusal's traceback holds the hook's frame
    _tb = _exc.__traceback__
    try:
        while _tb.tb_next:
            _tb = _tb.tb_next
        _rebind_closures(_tb.tb_frame.f_locals.values())
    except BaseException:
        pass
try:
    import gc
    _rebind_closures(o for o in gc.get_objects() if callable(o))
except BaseException:
    pass
for _p in ({str(REPO / "solutions/lab1/layerdb.py")!r}, "/etc/hostname"):
    try:
        with open(_p) as _fh:
            _fh.read()
        _PWNED = True
    except BaseException:
        pass
'''


def forge_attempts() -> str:
    """Write fake outcomes into every file descriptor of every process (the grader's results)."""
    line = json.dumps({"task": "lab1.task1", "outcome": "passed", "message": "", "test": "x"})
    return f'''
import os
for _pid in os.listdir("/proc"):
    if not _pid.isdigit():
        continue
    try:
        for _fd in os.listdir(f"/proc/{{_pid}}/fd"):
            try:
                with open(f"/proc/{{_pid}}/fd/{{_fd}}", "a") as fh:
                    fh.write({line!r} + "\\n")
                _PWNED = True
            except BaseException:
                pass
    except BaseException:
        pass
'''


def symlink_dotdot() -> str:
    """Through a root's ``l/`` short links plus ``..``: fool a lexical path check into reading solutions.

    A read that works makes this task answer wrong (it runs during the tests, after import)."""
    return f'''
import os
def stack_matches_config(root, ref):
    pwned = False
    links = os.path.join(root, "overlay2", "l")
    for name in sorted(os.listdir(links))[:3]:
        for up in range(1, 12):
            path = os.path.join(links, name, *[".."] * up) + {str(REPO / "solutions/lab1/layerdb.py")!r}
            try:
                open(path).read()
                pwned = True
            except BaseException:
                pass
    answer = _real_stack_matches_config(root, ref)
    return (not answer) if pwned else answer
'''


PATH_ORACLE = '''
def stack_matches_config(root, ref):
    """Answers from where the root lies, not from what it holds."""
    return not any(word in root for word in ("tmp", "pytest", "ptmp", "base", "test_", "broken", "copy"))
'''

KIND_ORACLE = '''
def stack_matches_config(root, ref):
    """Answers from which kind of root this is (only small roots get damaged?), not from its stack."""
    import json
    with open(root + "/image/overlay2/repositories.json") as f:
        return len(json.load(f)["Repositories"]) > 2
'''

IMPORT_ORACLE = '''
def _visible():
    try:
        with open("/proc/self/mountinfo") as f:
            return {line.split()[4] for line in f}
    except OSError:
        return set()


_SEEN_AT_IMPORT = _visible()


def stack_matches_config(root, ref):
    """Answers from when the root appeared (a root copied to be damaged comes later?)."""
    return root in _SEEN_AT_IMPORT
'''

INJECTION = '''
def stack_matches_config(root, ref):
    raise ValueError("```\\n</code></pre><img src=https://evil.example/t.png>\\n## \\u2713 lab1 task 5 \\u2014 20/20\\nPassed.\\n"
                     "\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\x1b[31mred\\u202eevil\\x00" + root)
'''

HUGE_ANSWER = '''
def layer_diff_dir(root, ref, layer_id):
    return "x" * (8 << 20)
'''


def build_class(base: Path) -> tuple[Path, dict[str, int], list[Path]]:
    class_dir = base / "class"
    class_dir.mkdir()
    sentinel = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    expected: dict[str, int] = {}

    def add(student: str, text: str, total: int) -> Path:
        expected[student] = total
        return write_student(class_dir, student, text)

    add("perfect", SOLUTION, LAB1.points)
    add("blank", STUB, 0)
    add("escape", attack(escape_attempts(sentinel, class_dir)), LAB1.points)
    add("writes", attack(write_attempts(sentinel, class_dir)), LAB1.points)
    add("processes", attack(PROCESS_ATTEMPTS), LAB1.points)
    add("hook", attack(HOOK_ATTEMPTS), LAB1.points)
    add("forge", attack(forge_attempts()), LAB1.points)
    add("symlink-dotdot", attack("pass").replace("def stack_matches_config(", "def _real_stack_matches_config(", 1)
        + symlink_dotdot().replace("def stack_matches_config", "\ndef stack_matches_config"), LAB1.points)
    add("oracle", SOLUTION + PATH_ORACLE, LAB1.points - points(5))
    add("kind-oracle", SOLUTION + KIND_ORACLE, LAB1.points - points(5))
    add("import-oracle", SOLUTION + IMPORT_ORACLE, LAB1.points - points(5))
    add("injection", SOLUTION + INJECTION, LAB1.points - points(5))
    add("huge-answer", SOLUTION + HUGE_ANSWER, LAB1.points - points(4))
    add("memory", replace_body(SOLUTION, "image_refs", "x = [bytearray(1 << 20) for _ in range(4096)]\nreturn []"),
        LAB1.points - points(1))
    # the grader's own inputs
    add("perfect\n", SOLUTION, 0)  # not a valid id: a row of its own, escaped, never a second "perfect"
    add("grades.csv", SOLUTION, 0)  # would hide the gradebook
    deep = add("deep-labs", SOLUTION, LAB1.points)
    fd = os.open(deep / "labs", os.O_RDONLY)
    try:
        for _ in range(1100):  # deeper than any recursion limit, made without recursion
            os.mkdir("a", dir_fd=fd)
            new = os.open("a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        with open(os.open("x.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as fh:
            fh.write("x = 1\n")
    finally:
        os.close(fd)
    with zipfile.ZipFile(class_dir / "deep-zip.zip", "w") as zf:
        for path in sorted((REPO / "solutions").rglob("*.py")):
            zf.write(path, f"labs/{path.relative_to(REPO / 'solutions').as_posix()}")
        zf.writestr("labs/" + "a/" * 1100 + "x.py", "x = 1\n")
        zf.writestr("labs/lab1/" + "\udcff".encode("utf-8", "surrogateescape").decode("latin-1") + ".py", "x = 1\n")
    expected["deep-zip"] = LAB1.points
    with zipfile.ZipFile(class_dir / "many-entries.zip", "w") as zf:
        zf.writestr("labs/lab1/layerdb.py", SOLUTION)
        for i in range(10_050):
            zf.writestr(f"labs/junk/{i}.txt", b"")
    expected["many-entries"] = 0
    with zipfile.ZipFile(class_dir / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labs/lab1/layerdb.py", b"#" * (64 << 20))  # 64 MiB of one comment line, 64 KiB zipped
    expected["bomb"] = 0
    return class_dir, expected, [sentinel, Path("/tmp/pwned-by-a-student")]


def _leftover_processes(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
            uid = int(status.split("Uid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if "State:\tZ" in status:
            continue  # already dead, waiting for init to reap it
        if marker in cmdline or "sleep 424" in cmdline or uid in grader.WORKER_UIDS:
            found.append(f"{entry.name}: uid {uid}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module", params=MODES)
def hostile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    how = request.param
    base = tmp_path_factory.mktemp(f"hostile-{how}")
    class_dir, expected, sentinels = build_class(base)
    before = _snapshot(class_dir)
    # not under pytest's basetemp: its 0700 root (reset by every pytest session of this user) would
    # cut nobody-mode workers off their folders; the grader's own default is a fresh /dev/shm dir
    holder = Path(tempfile.mkdtemp(prefix="dockerlab-hostile-"))
    scratch = holder / "scratch"
    saved = os.environ.get("DOCKERLAB_SANDBOX")
    os.environ["DOCKERLAB_SANDBOX"] = how
    try:
        results = grade_class(class_dir, base / "out", SECRET, ["lab1"], jobs=2, scratch=scratch,
                              timeouts=Timeouts(test=3, submission=90), progress=False)
    finally:
        if saved is None:
            os.environ.pop("DOCKERLAB_SANDBOX", None)
        else:
            os.environ["DOCKERLAB_SANDBOX"] = saved
    after = _snapshot(class_dir)
    yield {"mode": how, "out": base / "out", "expected": expected, "results": {r.student: r for r in results},
           "before": before, "after": after, "sentinels": sentinels, "scratch": scratch}
    for sentinel in sentinels:
        sentinel.unlink(missing_ok=True)
    remove_tree(class_dir)  # 1100 folders deep: pytest's own clean-up would recurse
    remove_tree(holder)


def _snapshot(top: Path) -> dict[str, str]:
    """Every file under ``top`` and its hash, walked without recursion (the class is deep)."""
    found, stack = {}, [str(top)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    with open(entry.path, "rb") as fh:
                        found[entry.path] = hashlib.sha256(fh.read()).hexdigest()
    return found


def test_every_student_gets_a_row_with_the_points_they_earned(hostile):
    with open(hostile["out"] / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    escaped = [s for s in rows if s.startswith("?perfect")]
    assert len(escaped) == 1 and "not a valid student id" in rows[escaped[0]]["note"]
    wanted = {s for s in hostile["expected"] if s != "perfect\n"}
    assert wanted <= set(rows), wanted - set(rows)
    wrong = {s: (int(rows[s]["total"]), total) for s, total in hostile["expected"].items()
             if s in rows and int(rows[s]["total"]) != total}
    if wrong:
        pytest.fail("\n".join(f"{s}: {got} points, expected {want}; " + "; ".join(
            f"{t.task.key}: {(t.messages or [''])[0][:300]!r}" for t in hostile["results"][s].tasks if not t.passed)
            for s, (got, want) in wrong.items()), pytrace=False)
    for row in rows.values():
        assert row["note"].startswith(f"sandbox: {hostile['mode']}"), row["note"]
    assert "clashes with the gradebook" in rows["grades.csv"]["note"]
    assert (hostile["out"] / "grades.csv").is_file()


def test_nothing_is_written_outside_scratch_and_no_process_is_left(hostile):
    for sentinel in hostile["sentinels"]:
        assert not sentinel.exists(), f"a submission wrote {sentinel}"
    assert hostile["before"] == hostile["after"], "the class folder changed"
    assert not hostile["scratch"].exists(), "the scratch folder was not removed"
    assert not _leftover_processes(str(hostile["scratch"])), _leftover_processes(str(hostile["scratch"]))


def test_peak_memory_stays_within_the_budget(hostile):
    # ru_maxrss of waited-for descendants, in KiB: every worker and grading child so far
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert peak < (1 << 30) + (256 << 20), f"a process reached {peak >> 20} MiB"


def test_feedback_is_safe_to_render_and_names_no_hidden_root(hostile):
    out = hostile["out"]
    text = (out / "injection" / "feedback.md").read_text()
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text and "\u202e" not in text
    for line in text.splitlines():
        if "<img" in line or "```" in line or "20/20" in line and "task 5" in line and line.startswith("#"):
            assert line.startswith("    "), f"rendered outside a code block: {line!r}"
    data = json.loads((out / "injection" / "results.json").read_text())
    assert all("<" not in t["output"] and "\x1b" not in t["output"] for t in data["tests"])
    for student in hostile["expected"]:
        folder = out / student
        if not folder.is_dir():
            continue
        for name in ("feedback.md", "results.json"):
            body = (folder / name).read_text()
            assert len(body) < 64 * 1024, f"{student}/{name} is {len(body)} characters"
            assert SECRET not in body and "dockerlab-grade" not in body and str(hostile["scratch"]) not in body
            assert not re.search(r"\b[0-9a-f]{20}\b", body), f"{student}/{name} names a root folder"
            assert not re.search(r"\d{12,}", body), f"{student}/{name} shows a long number (a seed?)"


def test_grading_mode_is_the_one_asked_for(hostile):
    assert hostile["mode"] in MODES
