"""The trusted side of the sandbox: ``--impl sandbox:<dir>`` calls student functions over a pipe.

:class:`RemoteImplementation` looks like :class:`dockerlab.impl.Implementation` to the tests,
but each attribute is a stub that sends ``{"id", "lab", "func", "args"}`` as one JSON line to a
worker process (``sandbox_main.py``, sandboxed by :mod:`.sandbox`) and reads back
``{"ok": value}`` or ``{"error": [type name, message]}``. Only JSON crosses the boundary, so a
student cannot hand the tests an object with a forged ``__eq__``, and the truth the tests compare
with never enters the student's process.

A call that does not answer in time kills the worker ("timed out"); a worker that died
(``sys.exit``, ``os._exit``, a crash) fails the call with a clear message. Either way a fresh
worker serves the next call. A Docker root passed as an argument is bound read-only into the
worker; a root the running worker cannot see yet makes it restart with that root added.

Configuration (environment of the trusted process; the worker's environment is empty):
``DOCKERLAB_CALL_TIMEOUT`` (s, default 10), ``DOCKERLAB_SANDBOX_MEM`` (bytes, default 1 GiB),
``DOCKERLAB_SANDBOX_CPU`` (s of CPU per worker, default 120), ``DOCKERLAB_SANDBOX_SCRATCH``
(where sandbox dirs go, default a temporary dir), ``DOCKERLAB_SANDBOX_EXPOSE`` (folders of roots
bound into every worker, e.g. pytest's temp dir), ``DOCKERLAB_SANDBOX`` (see :func:`.sandbox.mode`).
"""

from __future__ import annotations

import atexit
import builtins
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from dockerlab.impl import MissingFunction
from dockerlab.labinfo import lab as lab_info

from . import cgroup, sandbox

__all__ = ["ProcessDied", "RemoteImplementation", "TimedOut", "prepare_roots", "set_budget"]

_MAX_ANSWER = 4 * 1024 * 1024  #: bytes of one answer line; a larger one fails the call
_budget: float | None = None  # seconds of student time left in the running test
#: Workers started in this process and the seconds they took to be ready (the benchmark reads it).
STATS = {"starts": 0, "start_seconds": 0.0}
_live: list["RemoteImplementation"] = []


class TimedOut(Exception):
    """The student's function did not answer in time; its worker was killed."""


class ProcessDied(Exception):
    """The worker process ended while running the student's function."""


def set_budget(seconds: float | None) -> None:
    """The per-test time budget: the time the student's code may take in all calls of one test.

    The grader's own work (building roots) does not count. Once spent, calls fail at once.
    """
    global _budget
    _budget = seconds


def _spend(seconds: float) -> None:
    global _budget
    if _budget is not None:
        _budget -= seconds


def _error(name: str, message: str) -> Exception:
    """Rebuild the student's exception on the trusted side, by name, with only its message."""
    from fakeroot_builder import errors

    cls: type | None = None
    if name in errors.__all__:
        cls = getattr(errors, name)
    elif isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), Exception):
        cls = getattr(builtins, name)
    if cls is None:  # SystemExit, KeyboardInterrupt…: reported, never re-raised as such
        cls = type(name if re.fullmatch(r"[A-Za-z_]\w{0,60}", name) else "Error", (Exception,), {})
    exc = cls.__new__(cls)
    exc.args = (message,)
    if isinstance(exc, errors.RootError):
        exc.path, exc.problem = "", message
    return exc


#: What marks a directory as a root a lab reads: a classic Docker root, or a containerd root.
_ROOT_MARKERS = ("image", "io.containerd.metadata.v1.bolt")


def _is_root(arg: Any) -> bool:
    return isinstance(arg, str) and arg.startswith("/") and any(os.path.isdir(os.path.join(arg, m)) for m in _ROOT_MARKERS)


def _roots_in(args: Any) -> set[str]:
    """Docker roots (directories holding ``image/``) named by the arguments, nested included."""
    if isinstance(args, (list, tuple)):
        return set().union(*(_roots_in(a) for a in args)) if args else set()
    if isinstance(args, dict):
        return _roots_in(list(args.values()))
    return {os.path.normpath(args)} if _is_root(args) else set()


def _exposed() -> list[str]:
    """``$DOCKERLAB_SANDBOX_EXPOSE``: folders bound read-only into every worker (pytest's temp dir)."""
    return [p for p in os.environ.get("DOCKERLAB_SANDBOX_EXPOSE", "").split(os.pathsep) if p and os.path.isdir(p)]


def _under(path: str, folder: str) -> bool:
    return os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


def _cached_roots() -> set[str]:
    """Roots already in the builder's cache (each ``<name>/root``, never its ``truth.json``).

    Only when grading (the grader's own per-submission cache): elsewhere the user's cache is
    theirs, and a worker sees only the roots it is given.
    """
    from fakeroot_builder.cache import cache_dir, source_fingerprint

    if not _grading():
        return set()

    home = cache_dir() / "roots" / source_fingerprint()  # <name>/root for each root of this builder
    return {str(p / "root") for p in home.glob("*") if _is_root(str(p / "root"))} if home.is_dir() else set()


def _grading() -> bool:
    """Run by the grader (hidden seeds): roots live in its scratch, which it may adjust."""
    return bool(os.environ.get("DOCKERLAB_HIDDEN_SEEDS"))


_prepared: set[str] = set()


def prepare_roots(paths: set[str]) -> None:
    """Make roots readable by the worker before it sees them (the grader does it once for the
    shared roots, before forking). In fallback (``nobody``) mode: each root readable by the worker's uid (``o+rX``; the
    builder writes 0700/0600 like a daemon), with every ``truth.json`` next to a root kept
    unreadable (0600). Other modes need nothing: the grader builds its roots with ``user.``
    twins of overlayfs's ``trusted.`` marks (``DOCKERLAB_USER_MARKS``), which the sandbox can read."""
    if sandbox.mode() != "nobody":
        return
    for real in {Path(p).resolve() for p in paths} - {Path(p) for p in _prepared}:
        truth = real.parent / "truth.json"
        if truth.exists():
            os.chmod(truth, 0o600)
        sandbox.reachable(real)
        for top, dirs, files in os.walk(real):
            for name in dirs + files:
                full = os.path.join(top, name)
                if not os.path.islink(full):
                    os.chmod(full, os.lstat(full).st_mode | (0o005 if name in dirs else 0o004))
            os.chmod(top, os.lstat(top).st_mode | 0o005)
        _prepared.add(str(real))


class _Worker:
    """One running worker process and its two pipes."""

    def __init__(self, box: sandbox.SandboxDir, module: str, lab: str, roots: set[str], timeout: float) -> None:
        self.roots = set(roots)
        started = time.monotonic()
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        prepare_roots(self.roots)
        argv, options = sandbox.command(
            box, module, lab, sorted(self.roots | set(_exposed())), (req_r, resp_w),
            mem=int(os.environ.get("DOCKERLAB_SANDBOX_MEM", 1 << 30)),
            cpu=int(os.environ.get("DOCKERLAB_SANDBOX_CPU", 120)),
        )
        logs = box.base / "logs"
        logs.mkdir(exist_ok=True)
        try:
            with open(logs / f"{lab}.log", "ab") as log:  # the worker's own RLIMIT_FSIZE caps it
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env={}, cwd=box.base,
                    pass_fds=(req_r, resp_w), start_new_session=True,
                )
        finally:
            os.close(req_r)
            os.close(resp_w)
        joined = time.perf_counter()
        self.group = cgroup.join(self.proc.pid)  # before the options line: no student code has run yet
        self._ooms = self.group.oom_kills() if self.group else 0
        if self.group is not None:  # the cgroup is the budget (memory used, all processes); RLIMIT_AS a
            options["mem"] += 1 << 30  # backstop above it (address space threads reserve is not memory used)
            STATS["cgroup_seconds"] = STATS.get("cgroup_seconds", 0.0) + time.perf_counter() - joined
        os.write(self._req_w, (json.dumps(options) + "\n").encode())
        self._buffer = b""
        self._next = 0
        try:
            self.ready = self._read(time.monotonic() + timeout)
        finally:
            STATS["starts"] += 1
            STATS["start_seconds"] += time.monotonic() - started

    def _read(self, deadline: float) -> dict | None:
        """One response line, or None if the worker ended; raises TimedOut after ``deadline``."""
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_r], [], [], left)[0]:
                self.kill()
                raise TimedOut("no answer")
            chunk = os.read(self._resp_r, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > _MAX_ANSWER:
                self.kill()
                raise ProcessDied(f"the answer is larger than {_MAX_ANSWER // (1 << 20)} MiB")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            data = json.loads(line)
        except ValueError:
            self.kill()
            raise ProcessDied("the worker wrote something that is not an answer") from None
        return data if isinstance(data, dict) else {}

    def call(self, lab: str, func: str, args: list[Any], deadline: float) -> dict | None:
        self._next += 1
        line = json.dumps({"id": self._next, "lab": lab, "func": func, "args": args}) + "\n"
        try:
            os.write(self._req_w, line.encode())  # small; the pipe buffer holds it
        except (BrokenPipeError, OSError):
            return None
        while True:
            answer = self._read(deadline)
            if answer is None or answer.get("id") == self._next:
                return answer

    def exit_status(self) -> int | None:
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def out_of_memory(self) -> bool:
        """The kernel killed a process of this worker's cgroup for memory since the worker started."""
        return self.group is not None and self.group.oom_kills() > self._ooms

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
        if self.group is not None:
            self.group.kill(0.5)  # what ran inside bubblewrap's own session, too
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._req_w = self._resp_r = -1


class RemoteImplementation:
    """The functions of ``lab_id`` from the submission folder ``path``, run in a sandboxed worker."""

    def __init__(self, lab_id: str, path: str | os.PathLike[str]) -> None:
        self.lab_id = lab_id
        self.source = f"{Path(path) / 'labs' / lab_info(lab_id).module} (sandboxed)"
        self.module = lab_info(lab_id).module
        self.error: str | None = None  # set when the module cannot be imported
        self.timeout = float(os.environ.get("DOCKERLAB_CALL_TIMEOUT", 10))
        scratch = os.environ.get("DOCKERLAB_SANDBOX_SCRATCH")
        if scratch:
            Path(scratch).mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix=f"sandbox-{lab_id}-", dir=scratch))
        self._owns = scratch is None
        self.box = sandbox.prepare(base, Path(path))
        self._worker: _Worker | None = None
        _live.append(self)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def remote(*args: Any) -> Any:
            return self._call(name, args)

        remote.__name__ = remote.__qualname__ = name
        return remote

    def _start(self, roots: set[str]) -> _Worker:
        for other in _live:  # one worker at a time: the memory budget holds for all of them together
            if other._worker is not None:
                other._worker.kill()
                other._worker = None
        try:
            live = {r for r in roots | _cached_roots() if os.path.isdir(r)}  # a damaged copy is gone after its test
            worker = _Worker(self.box, self.module, self.lab_id, live, self.timeout)
        except TimedOut:
            self.error = f"importing it took longer than {self.timeout:g} s"
            raise MissingFunction(f"{self.source} could not be imported: {self.error}") from None
        if worker.ready is None or not worker.ready.get("ready"):
            status = worker.exit_status()
            if worker.out_of_memory():
                self.error = f"it used more than its memory budget ({cgroup.budget() >> 20} MiB, all its processes together) while being imported"
            elif worker.ready is None:
                self.error = f"the process ended (exit status {status}) while importing it"
            else:
                kind, message = (list(worker.ready.get("error") or []) + ["Error", ""])[:2]
                self.error = f"{kind}: {message}"
            worker.kill()
            raise MissingFunction(f"{self.source} could not be imported: {self.error}")
        self._worker = worker
        return worker

    def _call(self, func: str, args: tuple[Any, ...]) -> Any:
        if self.error is not None:
            raise MissingFunction(f"{self.source} could not be imported: {self.error}")
        plain = json.loads(json.dumps(list(args), default=os.fspath))
        timeout = self.timeout if _budget is None else min(self.timeout, _budget)
        if timeout <= 0:
            raise TimedOut(f"{func}() was not run: your code used up this test's time")
        started = time.monotonic()
        try:
            return self._run(func, plain, started + timeout, timeout)
        finally:
            _spend(time.monotonic() - started)

    def _run(self, func: str, plain: list[Any], deadline: float, timeout: float) -> Any:
        roots = _roots_in(plain)
        prepare_roots(roots)
        roots = {r for r in roots if not any(_under(r, d) for d in _exposed())}
        worker = self._worker
        if worker is None or not roots <= worker.roots or worker.proc.poll() is not None:
            worker = self._start(roots | (worker.roots if worker else set()))
        try:
            answer = worker.call(self.lab_id, func, plain, deadline)
        except TimedOut:
            self._worker = None
            raise TimedOut(f"{func}() timed out: no answer within {timeout:.3g} s (an endless loop?)") from None
        except ProcessDied as exc:
            self._worker = None
            raise ProcessDied(f"{func}() broke the worker: {exc}") from None
        if answer is None:
            status = worker.exit_status()
            worker.kill()
            self._worker = None
            if worker.out_of_memory():
                raise ProcessDied(f"the process running {func}() was killed: your code used more than its memory budget ({cgroup.budget() >> 20} MiB, all its processes together)")
            why = "killed by a signal (out of memory or CPU time?)" if status is not None and status < 0 else f"exit status {status}"
            raise ProcessDied(f"the process running {func}() ended ({why}): does your code call sys.exit() or os._exit()?")
        if "ok" in answer:
            return answer["ok"]
        kind, message = (list(answer.get("error") or []) + ["Error", ""])[:2]
        if kind == "MissingFunction":
            raise MissingFunction(f"{self.source} {message}")
        raise _error(str(kind), str(message))

    def close(self) -> None:
        """Stop the worker (and remove the sandbox dir if this object made it)."""
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        if self._owns:
            shutil.rmtree(self.box.base, ignore_errors=True)


@atexit.register
def _close_all() -> None:
    for impl in _live:
        impl.close()
