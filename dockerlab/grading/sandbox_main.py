"""The sandboxed worker: imports ONE student lab module and answers calls to its functions.

Standard library only, run as ``python3 -I -S sandbox_main.py`` by :mod:`dockerlab.grading.worker`
(inside bubblewrap when available). It is the only process that ever runs student code.

Protocol, one JSON document per line, on two inherited pipe fds (never stdout/stderr, which go
to a log nobody scores):

* arguments: ``--req FD --resp FD --module labs.lab1.layerdb --lab ID --scratch DIR`` and optional
  ``--path DIR`` (for ``sys.path``) and ``--allow-read DIR`` (both repeatable), ``--drop-to UID:GID``, ``--mem BYTES``, ``--cpu SECONDS``;
* after importing the module the worker writes ``{"ready": true}`` or
  ``{"ready": false, "error": [type, message]}``;
* request ``{"id": n, "lab": ..., "func": name, "args": [...]}`` → response
  ``{"id": n, "ok": value}`` or ``{"id": n, "error": [type name, message]}``.

Before any student code runs, the worker sets hard resource limits, drops to an unprivileged
user if asked to, and installs an audit hook (which cannot be removed) that refuses imports of
the instructor's packages and of ``ctypes``, process creation, and file access outside the
allowed directories. The hook is defence in depth; bubblewrap is the real boundary.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import sys

__all__ = ["main"]

_BLOCKED_MODULES = ("solutions", "tests", "dockerlab", "ctypes", "_ctypes", "_posixsubprocess", "pytest", "_pytest")
_BLOCKED_EVENTS = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "os.kill", "os.killpg", "socket.", "ctypes.", "os.chroot", "os.setuid",
)
_WRITE_EVENTS = {
    "os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.symlink", "os.link", "os.truncate",
    "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
}
_LINE_LIMIT = 64 * 1024 * 1024


def _parse(argv: list[str]) -> dict:
    opts: dict = {"allow_read": [], "path": []}
    it = iter(argv)
    for flag in it:
        value = next(it)
        key = flag.lstrip("-").replace("-", "_")
        if key in ("allow_read", "path"):
            opts[key].append(value)
        else:
            opts[key] = value
    return opts


def _limit(opts: dict) -> None:
    """Hard limits the student cannot raise again."""
    mem = int(opts.get("mem", 1 << 30))
    cpu = int(opts.get("cpu", 120))
    for which, value in (
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, 64 * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 64),
        (resource.RLIMIT_NOFILE, 256),
    ):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing


def _die_with_parent() -> None:
    """Best effort (Linux): get SIGKILL when the grader's process ends (bwrap does this itself)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux, no ctypes: the request pipe's EOF still ends us
        pass
    for name in [m for m in sys.modules if m.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # so a later import is audited (and refused); calls are audited too


def _drop(opts: dict) -> None:
    """Become an unprivileged user (fallback without bubblewrap, when started as root)."""
    if "drop_to" not in opts:
        return
    uid, gid = (int(x) for x in opts["drop_to"].split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("could not drop root")


def _under(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _guard(scratch: str, readable: list[str]) -> None:
    """Install the audit hook: no instructor imports, no processes, files only where allowed."""
    writable = [os.path.realpath(scratch), "/dev/null"]
    readable = [os.path.realpath(p) for p in readable] + writable + [os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)]

    def real(path: object) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        try:
            return os.path.realpath(os.path.abspath(str(path)))
        except (TypeError, ValueError):
            return "/"

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            top = str(args[0]).split(".")[0]
            if top in _BLOCKED_MODULES:
                raise ImportError(f"the grading sandbox does not allow importing {top}")
        elif event.startswith(_BLOCKED_EVENTS):
            raise PermissionError(f"the grading sandbox does not allow {event}")
        elif event == "open":
            path = real(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            )
            if not _under(path, writable if writing else readable):
                raise PermissionError(f"the grading sandbox does not allow {'writing' if writing else 'reading'} {args[0]!r}")
        elif event in ("os.listdir", "os.scandir"):
            path = real(args[0] if args[0] is not None else ".")
            if path is not None and not _under(path, readable):
                raise PermissionError(f"the grading sandbox does not allow listing {args[0]!r}")
        elif event in _WRITE_EVENTS:
            for arg in args[:2]:
                path = real(arg) if isinstance(arg, (str, bytes, os.PathLike)) else None
                if path is not None and not _under(path, writable):
                    raise PermissionError(f"the grading sandbox does not allow {event} on {arg!r}")

    sys.addaudithook(hook)


def _error_of(exc: BaseException) -> list[str]:
    """``[name, message]`` with the nearest class the grader knows (the lab errors or builtins)."""
    errors = sys.modules.get("fakeroot_builder.errors")
    for cls in type(exc).__mro__:
        if errors is not None and getattr(errors, cls.__name__, None) is cls:
            break
        if getattr(builtins, cls.__name__, None) is cls:
            break
    else:
        cls = Exception
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        message = "<unprintable message>"
    return [cls.__name__, message[:4000]]


def _send(fh, payload: dict) -> None:
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"id": payload.get("id"), "error": ["TypeError", f"the answer is not plain data (str, int, list, dict, None): {exc}"]})
    except RecursionError:
        text = json.dumps({"id": payload.get("id"), "error": ["TypeError", "the answer is nested too deeply"]})
    fh.write(text + "\n")
    fh.flush()


def main(argv: list[str] | None = None) -> int:
    opts = _parse(sys.argv[1:] if argv is None else argv)
    _limit(opts)
    _drop(opts)
    _die_with_parent()  # after _drop: changing user clears the parent-death signal
    scratch = opts["scratch"]
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin"})
    requests = os.fdopen(int(opts["req"]), "r", encoding="utf-8")
    responses = os.fdopen(int(opts["resp"]), "w", encoding="utf-8")
    sys.path[:0] = opts["path"]
    import fakeroot_builder.errors  # noqa: F401 - the lab errors, for _error_of
    import fakeroot_builder.formats  # noqa: F401

    _guard(scratch, opts["allow_read"])
    import importlib

    try:
        module = importlib.import_module(opts["module"])
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, anything
        _send(responses, {"ready": False, "error": _error_of(exc)})
        return 0
    _send(responses, {"ready": True})
    while True:
        line = requests.readline(_LINE_LIMIT)
        if not line:
            return 0
        request = json.loads(line)
        func = getattr(module, request["func"], None)
        if not callable(func):
            _send(responses, {"id": request["id"], "error": ["MissingFunction", f"defines no function {request['func']}()"]})
            continue
        try:
            value = func(*request["args"])
        except BaseException as exc:  # noqa: BLE001 - sys.exit, MemoryError, anything
            _send(responses, {"id": request["id"], "error": _error_of(exc)})
            continue
        _send(responses, {"id": request["id"], "ok": value})


if __name__ == "__main__":
    sys.exit(main())
