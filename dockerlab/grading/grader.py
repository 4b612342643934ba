"""Grade a class: each submission's tests run in a forked child, its code in a sandboxed worker.

For each student the parent (warm: pytest and the builder already imported) stages the
submission, then forks one child that runs the instructor's graded tests with
``--impl sandbox:<submission>`` on the student's hidden seeds. The child sends its outcomes to
the parent through a pipe (see :mod:`.recorder`); scores come only from what the parent holds in
its own memory, never from a file, an exit code or anything the student printed. Up to ``jobs``
children run at once. Each lab of a submission runs in its own child with its own wall-time
budget, one lab after the other; one that exceeds its budget is killed and the tasks of that lab
it had not finished score 0 (a hang in lab 1 does not cost lab 2).

Whatever one submission does, every student gets a row: staging, running and scoring are each
guarded per student, and the gradebook is written (atomically) even when the run is stopped.
The grader and its children are non-dumpable, so no other process of the same user can read
their memory, environment or open files through ``/proc``.

Each submission's workers share one memory cgroup where the machine offers one (:mod:`.cgroup`;
else RLIMIT_AS per worker stays the budget). SIGTERM, SIGHUP and Ctrl-C stop a run the same
way: children and workers killed, the gradebook written (the students not graded yet get a row
saying so), scratch and cgroups removed, then :class:`GradingStopped` is raised.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from dockerlab.labinfo import repo_root
from fakeroot_builder.safety import remove_tree

from . import cgroup, report, sandbox, submissions

__all__ = ["GradingStopped", "SandboxRequired", "Timeouts", "derive_seed", "grade_class", "hidden_seeds"]

#: Hidden seeds start here, far from the public ones (2023, 7, a student's own < 1 000 000).
_SEED_BASE = 10_000_000
#: Bytes of outcomes one submission's run may send (about 100 tests of capped messages).
_MAX_RESULTS = 4 * 1024 * 1024
#: Worker uids in ``nobody`` mode: one per submission, far above any real user, from a block of
#: ``_UID_BLOCK`` uids a run takes for itself (see :func:`_uid_block`).
_UID_FLOOR, _UID_BLOCK = 2_000_000_000, 65_536
#: The uids the last ``grade_class`` run gave its workers (read by the tests).
WORKER_UIDS: range = range(0)


class SandboxRequired(RuntimeError):
    """``require_sandbox`` was asked for and bubblewrap cannot run here."""


class GradingStopped(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT, SIGTERM, SIGHUP); the gradebook was written."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_stop = {"armed": False}


def _on_stop(signum: int, frame: object) -> None:
    if _stop["armed"]:  # once: a second signal must not cut the clean-up short
        _stop["armed"] = False
        raise GradingStopped(signum)


def _catch_stops() -> dict[int, object]:
    """Make SIGTERM and SIGHUP stop the run like Ctrl-C does (main thread only); returns the old handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    saved = {sig: signal.signal(sig, _on_stop) for sig in _STOP_SIGNALS}
    _stop["armed"] = True
    return saved


def _restore(saved: dict[int, object]) -> None:
    _stop["armed"] = False
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@dataclass(frozen=True)
class Timeouts:
    """Seconds: per test (every call into student code within it) and per lab of a submission (wall)."""

    test: float = 10.0
    submission: float = 180.0


def derive_seed(secret: str, student: str, index: int) -> int:
    """A seed nobody can compute without ``secret``: all 256 bits of HMAC-SHA256(``student:index``)."""
    digest = hmac.new(secret.encode(), f"{student}:{index}".encode(), hashlib.sha256).digest()
    return _SEED_BASE + int.from_bytes(digest, "big")


def hidden_seeds(secret: str, student: str, count: int = 1) -> list[int]:
    """The trees a student is graded on: the canonical one, then ``count`` hidden ones.

    The canonical root is shared by every student (built once); the last seed is the one the
    tests use for their extra trees (``seed_of_run``), so it is always a hidden one.
    """
    from fakeroot_builder.plan import CANONICAL_SEED

    return [CANONICAL_SEED, *(derive_seed(secret, student, i) for i in range(count))]


def _uid_block() -> int:
    """The first uid of a block no process holds, chosen at random: two runs on one host (two
    instructors, two CI jobs) never share a worker uid, so neither can kill the other's workers."""
    blocks = (4_294_967_294 - _UID_FLOOR) // _UID_BLOCK
    busy = set()
    for entry in Path("/proc").glob("[0-9]*/status") if sandbox.mode() == "nobody" else ():
        try:
            busy.add(int(entry.read_text().split("Uid:")[1].split()[1]))  # the effective uid
        except (OSError, IndexError, ValueError):
            continue
    for _ in range(64):
        base = _UID_FLOOR + secrets.randbelow(blocks) * _UID_BLOCK
        if not any(base <= uid < base + _UID_BLOCK for uid in busy):
            break
    return base


def _nondumpable() -> None:
    """No other process of this uid may read our memory, environment or fds via /proc."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except Exception:  # noqa: BLE001 - not Linux: nothing to do
        pass


def _warm_up() -> None:
    """Import what every child needs, once, before forking."""
    import _pytest.config  # noqa: F401
    import _pytest.fixtures  # noqa: F401
    import _pytest.main  # noqa: F401
    import _pytest.python  # noqa: F401
    import _pytest.terminal  # noqa: F401
    import pytest  # noqa: F401

    import dockerlab.impl  # noqa: F401
    import fakeroot_builder.build  # noqa: F401
    import fakeroot_builder.cache  # noqa: F401
    import fakeroot_builder.corrupt  # noqa: F401

    from . import recorder, worker  # noqa: F401


#: Kinds the tests also build on the canonical seed: shared by every student, built once.
_CANONICAL_KINDS = ("full", "other-host", "other-content", "containerd")


def _kinds(labs: list[str]) -> list[str]:
    """The root kinds the graded tests of ``labs`` use (read from their source; a kind missed here
    is still built when a test asks for it, only later)."""
    import re

    from fakeroot_builder.cache import FIXTURE_KINDS, GRADED_ROOTS

    found: set[str] = set()
    for lab_id in labs:
        try:
            text = (repo_root() / "tests" / f"test_{lab_id}.py").read_text(encoding="utf-8")
        except OSError:
            return list(GRADED_ROOTS)
        found |= {kind for kind in GRADED_ROOTS if f'"{kind}"' in text}
        params = {p.strip().split(":")[0].strip() for args in re.findall(r"def test_\w+\(([^)]*)\)", text)
                  for p in args.split(",")}
        found |= {kind for name, kind in FIXTURE_KINDS.items() if name in params}
    return [kind for kind in GRADED_ROOTS if kind in found]


def _shared_roots(base: Path, kinds: list[str]) -> list[Path]:
    """The public roots every student's run asks for (canonical tree and its variants)."""
    from fakeroot_builder.cache import graded_root
    from fakeroot_builder.plan import CANONICAL_SEED

    from .worker import prepare_roots

    roots = [graded_root(kind, CANONICAL_SEED, base=base) for kind in kinds if kind in _CANONICAL_KINDS]
    prepare_roots({str(r.path) for r in roots})  # once here, inherited by every forked child
    return [r.path.parent for r in roots]


@dataclass
class _Job:
    student: str
    folder: Path  # <scratch>/students/<n>
    seeds: list[int]
    labs: list[str]
    timeouts: Timeouts
    uid: int
    source: submissions.Submission | None = None
    kinds: tuple[str, ...] = ()  # the root kinds its labs use, built before its first worker starts
    lab_index: int = 0  # the lab its current child runs: one child, one budget, per lab
    notes: tuple[str, ...] = ()
    data: bytes = b""  # what its children sent so far
    group: cgroup.Group | None = None  # its memory cgroup, made before its first child starts

    @property
    def lab(self) -> str:
        return self.labs[self.lab_index]


def _prebuild(job: _Job) -> None:
    """Build every root the graded tests will ask for, before any worker starts.

    Only an optimisation: a worker sees the roots that exist when it starts, and restarts for a
    root it cannot see; building them first saves those restarts.
    """
    from fakeroot_builder.cache import graded_root

    for kind in job.kinds:
        graded_root(kind, job.seeds[-1])


def _link_shared(cache: Path, shared: list[Path]) -> None:
    """``cache/roots/<builder>/<name>`` → the shared roots (the student's own ones are built beside)."""
    for entry in shared:
        home = cache / "roots" / entry.parent.name
        home.mkdir(parents=True, exist_ok=True)
        (home / entry.name).symlink_to(entry)


def _run_child(job: _Job, shared: list[Path], results_fd: int, keep: bool) -> None:  # pragma: no cover - forked child
    """The body of a child: the graded tests against the sandboxed submission. Never returns."""
    try:
        os.setpgrp()
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.umask(0o022)  # what the tests write into damaged roots stays readable by the worker's uid
        grader_dir = job.folder / "grader"
        log_path = grader_dir / "pytest.log" if keep else Path(os.devnull)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdout = open(1, "w", closefd=False)  # not a capture object inherited from the parent
        sys.stderr = open(2, "w", closefd=False)
        cache = job.folder / "cache"
        if job.lab_index == 0:
            _link_shared(cache, shared)
        for var in ("DOCKERLAB_SECRET", "DOCKERLAB_STUDENT_ID", "DOCKERLAB_IMPL", "PYTEST_ADDOPTS",
                    "DOCKERLAB_SANDBOX_EXPOSE"):
            os.environ.pop(var, None)
        os.environ.pop(cgroup.ENV, None)
        if job.group is not None:  # where its workers go (the worker joins it before any student code runs)
            os.environ[cgroup.ENV] = str(job.group.path)
        os.environ.update({
            "DOCKERLAB_HIDDEN_SEEDS": ",".join(str(s) for s in job.seeds),
            "DOCKERLAB_CACHE": str(cache),
            "DOCKERLAB_SANDBOX_SCRATCH": str(job.folder / "sandbox"),
            "DOCKERLAB_CALL_TIMEOUT": str(job.timeouts.test),
            "DOCKERLAB_SANDBOX_UID": str(job.uid),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # only the course's conftest and our recorder
        })
        (job.folder / "ptmp").mkdir(exist_ok=True)
        started = time.monotonic()
        _prebuild(job)
        timing = {"hidden_trees": time.monotonic() - started}
        import pytest

        from .recorder import Recorder

        repo = repo_root()
        os.chdir(repo)
        args = [str(repo / "tests" / f"test_{job.lab}.py")]
        args += ["--impl", f"sandbox:{job.folder / 'submission'}", "-q", "-p", "no:cacheprovider",
                 "-c", str(repo / "pyproject.toml"), "--rootdir", str(repo), "--tb=no",
                 "--basetemp", str(job.folder / "ptmp" / f"base-{job.lab}"), "-W", "ignore::pytest.PytestAssertRewriteWarning",
                 "--assert=plain"]  # no rewriting: faster, and failed asserts show no truth
        pytest.main(args, plugins=[Recorder(results_fd, job.timeouts.test, timing)])
    except BaseException:  # noqa: BLE001 - whatever happened, the scores come from what was sent
        import traceback

        traceback.print_exc()
    finally:
        try:
            from .worker import _close_all

            _close_all()  # kill and reap this child's workers (os._exit skips atexit)
        except BaseException:  # noqa: BLE001
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled, self.start = total, 0, enabled, time.monotonic()

    def step(self, running: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        elapsed = time.monotonic() - self.start
        sys.stderr.write(f"\rgrading [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                         f"  {running} running  {elapsed:5.1f}s")
        sys.stderr.flush()
        if self.done == self.total:
            sys.stderr.write("\n")


def _default_scratch(where: Path | None = None) -> Path:
    """A new folder in ``where``, else in /dev/shm (memory: roots are many small files), else $TMPDIR."""
    shm = Path("/dev/shm")
    if where is None and shm.is_dir() and os.access(shm, os.W_OK):
        where = shm
    return Path(tempfile.mkdtemp(prefix="dockerlab-grade-", dir=where)).resolve()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def grade_class(
    class_dir: Path | str,
    out_dir: Path | str,
    secret: str,
    labs: list[str] | None = None,
    jobs: int | None = None,
    timeouts: Timeouts | None = None,
    *,
    seeds_per_student: int = 1,
    scratch: Path | None = None,
    scratch_in: Path | None = None,
    keep: bool = False,
    progress: bool = True,
    require_sandbox: bool = False,
) -> list[report.StudentResult]:
    """Grade every submission of ``class_dir`` into ``out_dir``; returns the results.

    ``scratch`` is the run's own temporary folder (removed at the end unless ``keep``); without
    it a new one is made in ``scratch_in`` (default /dev/shm, else $TMPDIR).

    Prints the sandbox mode in force first (and a warning when it is weaker than bubblewrap);
    with ``require_sandbox`` a machine without working bubblewrap is refused.
    """
    from dockerlab.labinfo import labs as all_labs

    class_dir, out_dir = Path(class_dir).resolve(), Path(out_dir).resolve()
    if not secret:
        raise ValueError("a secret is needed: --secret-file or $DOCKERLAB_SECRET")
    labs = labs or [lab.id for lab in all_labs()]
    timeouts = timeouts or Timeouts()
    jobs = max(1, jobs or os.cpu_count() or 1)
    state = sandbox.info()
    if require_sandbox and state.mode != "bwrap":
        _say(f"sandbox: {state.description}")
        raise SandboxRequired(f"--require-sandbox: bubblewrap cannot run here ({state.problems.get('bwrap', state.mode)}); "
                              "nothing was graded")
    _nondumpable()
    out_dir.mkdir(parents=True, exist_ok=True)
    found = submissions.collect(class_dir)
    results: list[report.StudentResult] = []
    saved = {var: os.environ.get(var) for var in ("DOCKERLAB_GRADE_SCRATCH", "DOCKERLAB_CACHE_SALT", "DOCKERLAB_SANDBOX_UID",
                                                  "DOCKERLAB_USER_MARKS")}
    scratch = Path(scratch).resolve() if scratch else None
    memory: cgroup.RunGroup | None = None
    TIMINGS.clear()
    saved_handlers = _catch_stops()
    try:
        made = cgroup.RunGroup.create()
        if isinstance(made, str):
            state = dataclasses.replace(state, memory="RLIMIT_AS", memory_why=made)
        else:
            memory, state = made, dataclasses.replace(state, memory=made.kind)
        _say(f"sandbox: {state.description}")
        if state.warning:
            _say(state.warning)
        scratch = scratch or _default_scratch(scratch_in)
        scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(scratch, 0o711)
        os.environ["DOCKERLAB_GRADE_SCRATCH"] = str(scratch)  # where the fallback sandbox may chmod
        os.environ["DOCKERLAB_CACHE_SALT"] = secrets.token_hex(16)  # root folder names say nothing of their seed
        os.environ["DOCKERLAB_USER_MARKS"] = "1"  # opaque/whiteout marks the sandbox can read (user.* twins)
        started = time.monotonic()
        _warm_up()
        with warnings.catch_warnings(record=True) as caught:  # the builder's notes, once, not per tree
            warnings.simplefilter("always")
            kinds = _kinds(labs)
            shared = _shared_roots(scratch / "shared-cache", kinds)
        if caught:
            _say(f"note: the trees are built as an ordinary user: {len(caught)} builder notes "
                 "(overlay xattrs as user.*, ownership as your own); the labs read either form")
        TIMINGS["shared_trees"] = time.monotonic() - started
        todo, refused = [], []
        global WORKER_UIDS
        first_uid = _uid_block()
        WORKER_UIDS = range(first_uid, first_uid + min(len(found), _UID_BLOCK))
        for index, sub in enumerate(found):
            if sub.problem:
                refused.append(report.StudentResult(sub.student, report.no_tasks(labs), f"not graded: {sub.problem}"))
                continue
            seeds = hidden_seeds(secret, sub.student, seeds_per_student)
            todo.append(_Job(sub.student, scratch / "students" / str(index), seeds, labs, timeouts, first_uid + index, sub,
                             tuple(kinds)))
        results = refused  # then each graded one as it ends: a stopped run keeps those already graded
        _run_all(todo, shared, jobs, out_dir, keep, _Progress(len(todo), progress), secret, memory, results)
    finally:
        _stop["armed"] = False  # from here on a stop signal waits: the clean-up runs to its end
        try:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
            graded = {r.student for r in results}
            results += [report.StudentResult(s.student, report.no_tasks(labs), "not graded: the run was stopped")
                        for s in found if s.student not in graded]
            report.write_csv(results, labs, out_dir / "grades.csv", mode=state.summary)
        finally:
            if memory is not None:
                memory.close()
            if scratch is not None and not keep:
                _remove(scratch)
            _restore(saved_handlers)
    return results


def _remove(path: Path) -> None:
    try:
        remove_tree(path)
    except Exception as exc:  # noqa: BLE001 - never lose the gradebook over a scratch folder
        _say(f"could not remove {path}: {exc}")


def _start(job: _Job, ctx, shared: list[Path], keep: bool, memory: cgroup.RunGroup | None):  # noqa: ANN001, ANN202
    """Stage the submission and make its memory cgroup (before its first lab), then fork the child
    of its current lab; returns (process, read end of its results pipe)."""
    if job.lab_index == 0:
        (job.folder / "grader").mkdir(parents=True)
        os.chmod(job.folder, 0o700 if sandbox.mode() != "nobody" else 0o711)
        os.chmod(job.folder / "grader", 0o700)
        submissions.stage(job.source, job.folder / "submission")
        if memory is not None:
            try:
                job.group = memory.submission(f"s{job.folder.name}")
            except OSError as exc:
                job.notes += (f"memory: RLIMIT_AS only (its cgroup could not be made: {exc.strerror or exc})",)
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        proc = ctx.Process(target=_run_child, args=(job, shared, write_fd, keep), daemon=False,
                           name=f"dockerlab-grade-{job.folder.name}")
        proc.start()
    finally:
        os.close(write_fd)
    return proc, read_fd


def _run_all(todo: list[_Job], shared: list[Path], jobs: int, out_dir: Path, keep: bool,
             progress: _Progress, secret: str, memory: cgroup.RunGroup | None = None,
             results: list[report.StudentResult] | None = None) -> list[report.StudentResult]:
    """Grade ``todo``, ``jobs`` at a time; each result is appended to ``results`` as soon as it is known."""
    # sentinel -> [job, process, deadline, results fd, bytes received, note]
    running: dict[int, list] = {}
    results = [] if results is None else results
    try:
        _run_loop(todo, shared, jobs, out_dir, keep, progress, secret, memory, running, results)
    finally:  # stopped (a signal, an error): no child, no worker may outlive the run
        for job, proc, *_ in running.values():
            _kill_group(proc)
        for proc in multiprocessing.active_children():  # one forked but not recorded yet
            if proc.name.startswith("dockerlab-grade-"):
                _kill_group(proc)
                proc.join()
        for job, proc, _, fd, *_ in running.values():
            proc.join()
            if fd >= 0:
                os.close(fd)
            if job.group is not None:
                job.group.kill()
            _kill_uid(job.uid)
    return results


def _run_loop(todo: list[_Job], shared: list[Path], jobs: int, out_dir: Path, keep: bool, progress: _Progress,
              secret: str, memory: cgroup.RunGroup | None, running: dict[int, list],
              results: list[report.StudentResult]) -> None:
    ctx = multiprocessing.get_context("fork")
    pending = list(reversed(todo))
    progress.step(0)
    while pending or running:
        while pending and len(running) < jobs:
            job = pending.pop()
            try:
                proc, fd = _start(job, ctx, shared, keep, memory)
            except Exception as exc:  # noqa: BLE001 - a submission that cannot be staged still gets a row
                job.notes += (f"not graded: the submission could not be prepared ({type(exc).__name__})",)
                results.append(_finish(job, out_dir, keep, secret))
                progress.done += 1
                continue
            running[proc.sentinel] = [job, proc, time.monotonic() + job.timeouts.submission, fd, bytearray(), ""]
        if not running:
            continue
        fds = {entry[3]: sentinel for sentinel, entry in running.items() if entry[3] >= 0}
        next_deadline = min(entry[2] for entry in running.values())
        ready = multiprocessing.connection.wait(list(running) + list(fds),
                                                timeout=max(0.0, next_deadline - time.monotonic()))
        for fd in [r for r in ready if r in fds]:
            _receive(running[fds[fd]])
        now = time.monotonic()
        for sentinel in list(running):
            job, proc, deadline, fd, data, note = running[sentinel]
            if sentinel not in ready:
                if now < deadline:
                    continue
                _kill_group(proc)
                note = f"{job.lab} ran out of time ({job.timeouts.submission:g} s); its tasks not finished score 0"
            proc.join()
            while running[sentinel][3] >= 0:  # what the child sent before it ended
                if not _receive(running[sentinel]):
                    os.close(running[sentinel][3])
                    running[sentinel][3] = -1
            note = note or running[sentinel][5]
            if not note and proc.exitcode != 0:
                note = f"the grading run of {job.lab} crashed (exit code {proc.exitcode}); its tasks not finished score 0"
            del running[sentinel]
            if job.group is not None:
                job.group.kill()  # nothing of its workers outlives its lab
            _kill_uid(job.uid)
            job.data += bytes(data)
            if note:
                job.notes += (note,)
            if job.lab_index + 1 < len(job.labs):  # the next lab, with a budget of its own
                job.lab_index += 1
                pending.append(job)
                continue
            results.append(_finish(job, out_dir, keep, secret))
            progress.done += 1
            progress.step(len(running))


def _receive(entry: list) -> bool:
    """Read what a child sent (False: nothing to read now); past the budget the rest is dropped."""
    fd, data = entry[3], entry[4]
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return False
    except OSError:
        chunk = b""
    if not chunk:
        os.close(fd)
        entry[3] = -1
        return True
    if len(data) + len(chunk) > _MAX_RESULTS:
        entry[5] = entry[5] or "the grading run sent too much output; tasks not reported score 0"
    else:
        data += chunk
    return True


#: Seconds spent per kind of work in the last ``grade_class`` run, summed over submissions (bench.py).
TIMINGS: dict[str, float] = {}


def _add_timings(data: bytes) -> None:
    for line in data.splitlines():
        if line.startswith(b'{"timing"'):
            try:
                for key, value in json.loads(line)["timing"].items():
                    TIMINGS[key] = TIMINGS.get(key, 0.0) + float(value)
            except (ValueError, TypeError, AttributeError):
                pass


def _finish(job: _Job, out_dir: Path, keep: bool, secret: str) -> report.StudentResult:
    if job.group is not None:
        kills = job.group.oom_kills()
        if kills:
            job.notes += (f"memory: its code went over its {cgroup.budget() >> 20} MiB budget and was killed "
                          f"{kills} time{'s' if kills > 1 else ''}; those tests score 0",)
        job.group.remove()
    note = "; ".join(job.notes)
    _add_timings(job.data)
    try:
        result = report.score(job.student, job.labs, report.parse_records(job.data), note)
    except Exception as exc:  # noqa: BLE001 - one broken record must not lose the class
        result = report.StudentResult(job.student, report.no_tasks(job.labs), f"could not be scored ({type(exc).__name__})")
    masks = [secret, *(str(s) for s in job.seeds[1:]), str(job.folder)]
    try:
        report.write_student(result, out_dir, masks)
    except Exception as exc:  # noqa: BLE001 - the row in grades.csv still comes
        result.note = (result.note + "; " if result.note else "") + f"feedback could not be written ({type(exc).__name__})"
    if not keep:
        _remove(job.folder)
    return result


def _kill_group(proc: multiprocessing.process.BaseProcess) -> None:
    """Kill a child and everything in its process group (its workers, if not in their own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _kill_uid(uid: int) -> None:
    """``nobody`` mode: end every process left with this submission's own uid (there should be none)."""
    if os.geteuid() != 0 or sandbox.mode() != "nobody":
        return
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked killer
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal, i.e. its own, but not us
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    os.waitpid(pid, 0)
