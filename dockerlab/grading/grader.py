"""Grade a class: each submission's tests run in a forked child, its code in a sandboxed worker.

For each student the parent (warm: pytest and the builder already imported) forks one child
that runs the instructor's graded tests with ``--impl sandbox:<submission>`` on the student's
hidden seeds. The child records outcomes in a file of the grader's own (see :mod:`.recorder`);
scores come only from that file, never from an exit code or from anything the student printed.
Each lab of a submission runs in its own child with its own wall-time budget, one lab after the
other: up to ``jobs`` children run at once; one that exceeds its budget is killed and the tasks
of that lab it had not finished score 0 (a hang in lab 1 does not cost lab 2).
"""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dockerlab.labinfo import repo_root
from fakeroot_builder.safety import remove_tree

from . import report, submissions

__all__ = ["Timeouts", "derive_seed", "grade_class", "hidden_seeds"]

#: Hidden seeds start here, far from the public ones (2023, 7, a student's own < 1 000 000).
_SEED_BASE = 10_000_000


@dataclass(frozen=True)
class Timeouts:
    """Seconds: per test (every call into student code within it) and per lab of a submission (wall)."""

    test: float = 10.0
    submission: float = 180.0


def derive_seed(secret: str, student: str, index: int) -> int:
    """A seed nobody can compute without ``secret``: HMAC-SHA256 of ``student:index``."""
    digest = hmac.new(secret.encode(), f"{student}:{index}".encode(), hashlib.sha256).digest()
    return _SEED_BASE + int.from_bytes(digest[:6], "big")


def hidden_seeds(secret: str, student: str, count: int = 1) -> list[int]:
    """The trees a student is graded on: the canonical one, then ``count`` hidden ones.

    The canonical root is shared by every student (built once); the last seed is the one the
    tests use for their extra trees (``seed_of_run``), so it is always a hidden one.
    """
    from fakeroot_builder.plan import CANONICAL_SEED

    return [CANONICAL_SEED, *(derive_seed(secret, student, i) for i in range(count))]


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


def _shared_roots(base: Path) -> None:
    """The public roots every student's run asks for (canonical tree and its variants)."""
    from fakeroot_builder.cache import cached_root
    from fakeroot_builder.plan import CANONICAL_SEED

    from .worker import prepare_roots

    roots = [
        cached_root(seed=CANONICAL_SEED, base=base),
        cached_root(seed=CANONICAL_SEED, host_seed=CANONICAL_SEED + 1, base=base),
        cached_root(seed=CANONICAL_SEED + 1, images=["nginx:latest"], containers=False, base=base),
    ]
    prepare_roots({str(r.path) for r in roots})  # once here, inherited by every forked child


@dataclass
class _Job:
    student: str
    folder: Path  # <scratch>/<student>
    seeds: list[int]
    labs: list[str]
    timeouts: Timeouts
    lab_index: int = 0  # the lab its current child runs: one child, one budget, per lab
    notes: tuple[str, ...] = ()

    @property
    def lab(self) -> str:
        return self.labs[self.lab_index]

    @property
    def results(self) -> Path:
        return self.folder / "grader" / "results.jsonl"


def _prebuild(job: _Job) -> None:
    """Build every root the graded tests will ask for, before any worker starts.

    Only an optimisation: a worker sees the roots that exist when it starts, and restarts for a
    root it cannot see; building them first saves those restarts.
    """
    from fakeroot_builder.cache import GRADED_ROOTS, graded_root

    for kind in GRADED_ROOTS:
        graded_root(kind, job.seeds[-1])


def _run_child(job: _Job, shared: Path) -> None:  # pragma: no cover - runs in the forked child
    """The body of a child: the graded tests against the sandboxed submission. Never returns."""
    try:
        os.setpgrp()
        grader_dir = job.folder / "grader"
        log = os.open(grader_dir / "pytest.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        cache = job.folder / "cache"
        (cache / "roots").mkdir(parents=True, exist_ok=True)
        for entry in (shared / "roots").iterdir():
            if not entry.name.startswith(".") and not (cache / "roots" / entry.name).is_symlink():  # 2nd lab: there
                (cache / "roots" / entry.name).symlink_to(entry)
        for var in ("DOCKERLAB_SECRET", "DOCKERLAB_STUDENT_ID", "DOCKERLAB_IMPL", "PYTEST_ADDOPTS"):
            os.environ.pop(var, None)
        os.environ.update({
            "DOCKERLAB_HIDDEN_SEEDS": ",".join(str(s) for s in job.seeds),
            "DOCKERLAB_CACHE": str(cache),
            "DOCKERLAB_SANDBOX_SCRATCH": str(job.folder / "sandbox"),
            "DOCKERLAB_CALL_TIMEOUT": str(job.timeouts.test),
            "DOCKERLAB_SANDBOX_EXPOSE": str(job.folder / "ptmp"),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # only the course's conftest and our recorder
        })
        (job.folder / "ptmp").mkdir(exist_ok=True)
        _prebuild(job)
        import pytest

        from .recorder import Recorder

        repo = repo_root()
        os.chdir(repo)
        args = [str(repo / "tests" / f"test_{job.lab}.py")]
        args += ["--impl", f"sandbox:{job.folder / 'submission'}", "-q", "-p", "no:cacheprovider",
                 "-c", str(repo / "pyproject.toml"), "--rootdir", str(repo),
                 "--basetemp", str(job.folder / "ptmp" / f"base-{job.lab}"), "-W", "ignore::pytest.PytestAssertRewriteWarning",
                 "--assert=plain"]  # no rewriting: faster, and failed asserts show no truth
        pytest.main(args, plugins=[Recorder(job.results, job.timeouts.test)])
    except BaseException:  # noqa: BLE001 - whatever happened, the scores come from the results file
        import traceback

        traceback.print_exc()
    finally:
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


def _default_scratch() -> Path:
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="dockerlab-grade-", dir=where))


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
    keep: bool = False,
    progress: bool = True,
) -> list[report.StudentResult]:
    """Grade every submission of ``class_dir`` into ``out_dir``; returns the results."""
    from dockerlab.labinfo import labs as all_labs

    class_dir, out_dir = Path(class_dir).resolve(), Path(out_dir).resolve()
    if not secret:
        raise ValueError("a secret is needed: --secret or $DOCKERLAB_SECRET")
    labs = labs or [lab.id for lab in all_labs()]
    timeouts = timeouts or Timeouts()
    jobs = max(1, jobs or os.cpu_count() or 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(scratch).resolve() if scratch else _default_scratch()
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o755)
    results: list[report.StudentResult] = []
    previous = os.environ.get("DOCKERLAB_GRADE_SCRATCH")
    os.environ["DOCKERLAB_GRADE_SCRATCH"] = str(scratch)  # where the fallback sandbox may chmod
    try:
        _warm_up()
        shared = scratch / "shared-cache"
        _shared_roots(shared)
        todo = []
        for sub in submissions.collect(class_dir):
            folder = scratch / "students" / sub.student
            (folder / "grader").mkdir(parents=True, exist_ok=True)
            os.chmod(folder / "grader", 0o700)
            submissions.stage(sub, folder / "submission")
            todo.append(_Job(sub.student, folder, hidden_seeds(secret, sub.student, seeds_per_student), labs, timeouts))
        results = _run_all(todo, shared, jobs, out_dir, keep, _Progress(len(todo), progress))
    finally:
        if previous is None:
            os.environ.pop("DOCKERLAB_GRADE_SCRATCH", None)
        else:
            os.environ["DOCKERLAB_GRADE_SCRATCH"] = previous
        report.write_csv(results, labs, out_dir / "grades.csv")
        if not keep:
            remove_tree(scratch)
    return results


def _finish(job: _Job, note: str, out_dir: Path, keep: bool) -> report.StudentResult:
    try:
        result = report.score(job.student, job.labs, job.results, note)
    except Exception as exc:  # noqa: BLE001 - one broken record must not lose the class
        result = report.StudentResult(job.student, [], f"could not be scored: {exc}")
    report.write_student(result, out_dir)
    if not keep:
        remove_tree(job.folder)
    return result


def _run_all(todo: list[_Job], shared: Path, jobs: int, out_dir: Path, keep: bool,
             progress: _Progress) -> list[report.StudentResult]:
    ctx = multiprocessing.get_context("fork")
    pending = list(reversed(todo))
    running: dict[int, tuple[_Job, multiprocessing.process.BaseProcess, float]] = {}
    results: list[report.StudentResult] = []
    progress.step(0)
    while pending or running:
        while pending and len(running) < jobs:
            job = pending.pop()
            proc = ctx.Process(target=_run_child, args=(job, shared), daemon=False)
            proc.start()
            running[proc.sentinel] = (job, proc, time.monotonic() + job.timeouts.submission)
        next_deadline = min(d for _, _, d in running.values())
        ready = multiprocessing.connection.wait(list(running), timeout=max(0.0, next_deadline - time.monotonic()))
        now = time.monotonic()
        for sentinel in list(running):
            job, proc, deadline = running[sentinel]
            note = ""
            if sentinel not in ready:
                if now < deadline:
                    continue
                _kill_group(proc)
                note = f"{job.lab} ran out of time ({job.timeouts.submission:g} s); its tasks not finished score 0"
            proc.join()
            if not note and proc.exitcode != 0:
                note = f"the grading run of {job.lab} crashed (exit code {proc.exitcode}); its tasks not finished score 0"
            del running[sentinel]
            if note:
                job.notes += (note,)
            if job.lab_index + 1 < len(job.labs):  # the next lab, with a budget of its own
                job.lab_index += 1
                pending.append(job)
                continue
            results.append(_finish(job, "; ".join(job.notes), out_dir, keep))
            progress.done += 1
            progress.step(len(running))
    return results


def _kill_group(proc: multiprocessing.process.BaseProcess) -> None:
    """Kill a child and everything in its process group (its workers, if not in their own)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
