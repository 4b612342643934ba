"""The memory budget of a submission (a memory cgroup, else RLIMIT_AS) and a run stopped by a signal.

The cgroup class runs only where the grader can make a memory cgroup (root with cgroup v1, or a
delegated cgroup v2); elsewhere it is skipped, saying why, and the fallback tests run instead.
Budgets are small (384 MiB) so the class stays light on a shared machine.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dockerlab.grading import cgroup, sandbox
from dockerlab.grading.grader import Timeouts, grade_class
from dockerlab.labinfo import lab, repo_root
from fakeroot_builder.safety import remove_tree

from test_grader import SECRET, SOLUTION, STUB, points, replace_body, write_student

REPO = repo_root()
LAB1 = lab("lab1")
BUDGET = 384 << 20

#: Four threads, 8 MiB at a time, 512 MiB in all: more than the budget, though no single
#: allocation is big and the address space stays under the RLIMIT_AS backstop (budget + 1 GiB).
THREADS = """import threading
held = []
def grab():
    for _ in range(16):
        held.append(bytearray(8 << 20))
threads = [threading.Thread(target=grab) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
return []"""

#: 64 MiB into the sandbox's HOME (a tmpfs under bubblewrap, whose pages a cgroup is charged for);
#: a write that worked makes task 1 answer wrong.
TMPFS = """import os
wrote = 0
for where in (os.path.expanduser("~"), "/tmp", "/dev/shm"):
    try:
        with open(os.path.join(where, "big"), "wb") as fh:
            for _ in range(64):
                fh.write(b"x" * (1 << 20))
                wrote += 1
    except BaseException:
        pass
if wrote:
    return ["wrote %d MiB" % wrote]
"""


def _own_cgroup() -> Path | None:
    found = cgroup._own(Path("/proc"), Path("/proc/self/mountinfo").read_text()) if Path("/proc/self/cgroup").exists() else ""
    return None if isinstance(found, str) else found[1]


def _runs_of(pid: int) -> list[Path]:
    own = _own_cgroup()
    return sorted(own.glob(f"dockerlab-{pid}-*")) if own else []


def _with_budget(fn):  # noqa: ANN001, ANN202
    saved = os.environ.get("DOCKERLAB_SANDBOX_MEM")
    os.environ["DOCKERLAB_SANDBOX_MEM"] = str(BUDGET)
    try:
        return fn()
    finally:
        if saved is None:
            os.environ.pop("DOCKERLAB_SANDBOX_MEM", None)
        else:
            os.environ["DOCKERLAB_SANDBOX_MEM"] = saved


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def memory_class(tmp_path_factory: pytest.TempPathFactory):
    probe = cgroup.RunGroup.create(BUDGET)
    if isinstance(probe, str):
        pytest.skip(f"no memory cgroup can be made here ({probe}): the RLIMIT_AS fallback is tested instead")
    probe.close()
    base = tmp_path_factory.mktemp("memory")
    class_dir = base / "class"
    write_student(class_dir, "perfect", SOLUTION)
    write_student(class_dir, "threads", replace_body(SOLUTION, "image_refs", THREADS))
    write_student(class_dir, "tmpfs", SOLUTION.replace("def image_refs(", "def _image_refs(", 1)
                  + "\n\ndef image_refs(*args):\n" + "\n".join("    " + line for line in TMPFS.splitlines())
                  + "\n    return _image_refs(*args)\n")
    results = _with_budget(lambda: grade_class(class_dir, base / "out", SECRET, ["lab1"], jobs=2, progress=False,
                                               timeouts=Timeouts(test=10, submission=120)))
    return {"out": base / "out", "results": {r.student: r for r in results}, "runs": _runs_of(os.getpid())}


def test_going_over_the_budget_scores_0_with_a_note_naming_memory(memory_class):
    rows = _rows(memory_class["out"])
    assert int(rows["threads"]["total"]) == LAB1.points - points(1)
    task1 = memory_class["results"]["threads"].tasks[0]
    assert not task1.passed and any("memory budget (384 MiB" in m for m in task1.messages), task1.messages
    assert "went over its 384 MiB budget and was killed" in rows["threads"]["note"], rows["threads"]["note"]


def test_a_classmate_in_the_same_run_gets_full_marks(memory_class):
    rows = _rows(memory_class["out"])
    assert int(rows["perfect"]["total"]) == LAB1.points, memory_class["results"]["perfect"].tasks
    assert int(rows["tmpfs"]["total"]) == LAB1.points, [t.messages[:1] for t in memory_class["results"]["tmpfs"].tasks]
    for row in rows.values():
        assert row["note"].startswith("sandbox: ") and " + memory cgroup v" in row["note"].split(";")[0], row["note"]


def test_no_cgroup_is_left_after_the_run(memory_class):
    assert memory_class["runs"] == []


def test_a_worker_joins_before_its_options_and_with_every_process(tmp_path):
    """bubblewrap forks at once: its children (and Python in them) must be moved too, not only its pid."""
    run = cgroup.RunGroup.create(BUDGET)
    if isinstance(run, str):
        pytest.skip(f"no memory cgroup can be made here ({run})")
    from dockerlab.grading import worker

    group = run.submission("joins")
    saved = os.environ.get(cgroup.ENV)
    os.environ[cgroup.ENV] = str(group.path)
    write_student(tmp_path, "s", SOLUTION)
    impl = worker.RemoteImplementation("lab1", tmp_path / "s")
    try:
        for _ in range(3):
            started = impl._start(set())
            tree = _descendants(started.proc.pid)
            assert tree and set(tree) <= set(group.pids()), (tree, group.pids())
            started.kill()
            impl._worker = None
            assert group.pids() == []
    finally:
        impl.close()
        if saved is None:
            os.environ.pop(cgroup.ENV, None)
        else:
            os.environ[cgroup.ENV] = saved
        run.close()
    assert not run.path.exists()


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in cgroup._tasks(pid):
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def test_without_a_cgroup_rlimit_as_is_the_budget_and_the_description_says_so(tmp_path, monkeypatch):
    """The fallback: forced here with DOCKERLAB_CGROUP=off (an ordinary user gets it without asking)."""
    monkeypatch.setenv("DOCKERLAB_CGROUP", "off")
    assert cgroup.RunGroup.create() == "DOCKERLAB_CGROUP=off"
    class_dir = tmp_path / "class"
    write_student(class_dir, "threads", replace_body(SOLUTION, "image_refs", THREADS))
    write_student(class_dir, "blank", STUB)
    monkeypatch.setenv("DOCKERLAB_SANDBOX_MEM", str(BUDGET))
    results = {r.student: r for r in grade_class(class_dir, tmp_path / "out", SECRET, ["lab1"], jobs=2, progress=False,
                                                   timeouts=Timeouts(test=10, submission=120))}
    rows = _rows(tmp_path / "out")
    assert int(rows["threads"]["total"]) == LAB1.points - points(1)
    # RLIMIT_AS stopped it inside the worker (MemoryError in a thread, so a wrong answer, or a thread that
    # could not start): the student's own failure, never a cgroup kill or a cgroup note
    message = results["threads"].tasks[0].messages[0]
    assert message.startswith("Task 1") and "memory budget (" not in message, message
    assert "budget" not in rows["threads"]["note"]
    for row in rows.values():
        assert " + memory RLIMIT_AS" in row["note"].split(";")[0], row["note"]
    state = sandbox.info()
    import dataclasses

    text = dataclasses.replace(state, memory="RLIMIT_AS", memory_why="not root").description
    assert "384 MiB of address space per worker process (RLIMIT_AS" in text and "not root" in text


def test_the_grader_finds_its_cgroup_in_either_version(tmp_path):
    """/proc/self/cgroup and mountinfo as v1 (root) and v2 (a delegated subtree) machines show them."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    v1 = tmp_path / "v1" / "process_api" / "abc"
    v1.mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("4:memory:/process_api/abc\n1:cpu:/\n0::/\n")
    mounts = (f"35 31 0:32 / {tmp_path / 'v1'} rw,relatime - cgroup cgroup rw,memory\n"
              f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw\n")
    assert cgroup._own(proc, mounts) == (1, v1)
    v2 = tmp_path / "v2" / "user.slice" / "app.scope"
    v2.mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu io memory pids\n")
    (proc / "self" / "cgroup").write_text("0::/user.slice/app.scope\n")
    assert cgroup._own(proc, f"30 23 0:26 / {tmp_path / 'v2'} rw - cgroup2 cgroup2 rw\n") == (2, v2)
    # a container that sees only its own subtree mounted (mount root = its cgroup)
    assert cgroup._own(proc, f"30 23 0:26 /user.slice {tmp_path / 'v2' / 'user.slice'} rw - cgroup2 cgroup2 rw\n") == (2, v2)
    (v2 / "cgroup.controllers").write_text("cpu pids\n")
    assert "without the memory controller" in cgroup._own(proc, f"30 23 0:26 / {tmp_path / 'v2'} rw - cgroup2 cgroup2 rw\n")
    # the benchmark's CPU meter: v2 counts CPU time in every cgroup, no controller needed
    assert cgroup._own(proc, f"30 23 0:26 / {tmp_path / 'v2'} rw - cgroup2 cgroup2 rw\n", "cpuacct") == (2, v2)
    assert "not Linux" in cgroup._own(tmp_path / "nowhere", "")


def test_out_of_memory_kills_are_counted_in_either_version(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n")
    assert cgroup.Group(v2).version == 2 and cgroup.Group(v2).oom_kills() == 2
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroup.Group(v1).version == 1 and cgroup.Group(v1).oom_kills() == 3
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")  # before Linux 4.13: limit hits
    (v1 / "memory.failcnt").write_text("5\n")
    assert cgroup.Group(v1).oom_kills() == 5


# -- a run stopped by a signal -------------------------------------------------------------------


def _processes_naming(marker: str, also: str = "") -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "status").read_text()
        except OSError:
            continue
        if marker in cmdline and also in cmdline and "State:\tZ" not in state:
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_run_stopped_by_a_signal_cleans_up_and_writes_every_row(tmp_path, signum):
    class_dir, out = tmp_path / "class", tmp_path / "out"
    shm = Path("/dev/shm")  # where the grader's scratch goes by default (many small files: fast to remove)
    scratch = Path(tempfile.mkdtemp(prefix="test-stop-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None))
    students = {"perfect": SOLUTION, "blank": STUB,
                "hang": replace_body(SOLUTION, "compare_hosts", "while True:\n    pass"),
                "hang-import": SOLUTION + "\nwhile True:\n    pass\n"}
    for student, text in students.items():
        write_student(class_dir, student, text)
    env = {**os.environ, "DOCKERLAB_SECRET": SECRET, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "dockerlab", "grade", str(class_dir), "--out", str(out), "--labs", "lab1",
           "--jobs", "2", "--no-progress", "--scratch", str(scratch), "--test-timeout", "20", "--timeout", "120"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # a busy machine: the shared trees come first
        while not _processes_naming(str(scratch), "sandbox_main.py"):  # until workers run student code
            assert proc.poll() is None and time.monotonic() < deadline, ("no worker started", proc.poll())
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signum, (proc.returncode, stderr.decode()[-2000:])
        assert f"stopped by {signal.Signals(signum).name}" in stderr.decode()
        rows = _rows(out)
        assert set(rows) == set(students), rows
        assert any("not graded: the run was stopped" in row["note"] for row in rows.values()), rows
        assert list(scratch.iterdir()) == [], "the scratch folder was left"
        time.sleep(0.5)
        assert _processes_naming(str(scratch)) == [] and _processes_naming(str(class_dir)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_tree(scratch)
    assert _runs_of(proc.pid) == [], "the run's cgroup was left"
