"""The sandboxed worker: imports ONE student lab module and answers calls to its functions.

Standard library only, run as ``python3 -I -S -B sandbox_main.py`` by :mod:`dockerlab.grading.worker`
(inside bubblewrap when available). It is the only process that ever runs student code.

Protocol, one JSON document per line, on two inherited pipe fds (never stdout/stderr, which go
to a size-capped log nobody scores):

* arguments: ``--req FD --resp FD``; the first request line holds the options (kept off the
  command line, which every process can read): ``{"module": "labs.lab1.layerdb", "lab": ID,
  "scratch": DIR, "path": [DIR…] (for sys.path), "allow_read": [DIR…], "drop_to": "UID:GID",
  "mem": BYTES, "cpu": SECONDS, "require": ["seccomp", "landlock"]}`` (all but the first three optional);
* after importing the module the worker writes ``{"ready": true}`` or
  ``{"ready": false, "error": [type, message]}``;
* request ``{"id": n, "lab": ..., "func": name, "args": [...]}`` → response
  ``{"id": n, "ok": value}`` or ``{"id": n, "error": [type name, message]}``.

Before any student code runs the worker, in every sandbox mode:

1. sets hard resource limits (address space, CPU, file size, open files, no core dumps);
2. drops to the unprivileged user it is given (``nobody`` mode);
3. becomes non-dumpable (no other process of its uid may read its memory or ``/proc`` files)
   and sets ``no_new_privs``;
4. restricts itself with **Landlock** (Linux ≥ 5.13) where the kernel has it: read-only access
   to the Python installation, the submission and the roots under test, nothing else; no
   signals to and no abstract sockets with processes outside its own domain; no TCP;
5. installs a **seccomp** filter: no new processes (threads only), no exec, no signals, no
   ptrace or cross-process memory access, no sockets, no mounts or namespaces, and no file
   creation, writing, renaming, deleting or mode/owner changes anywhere (the labs only read);
6. installs an audit hook (which cannot be removed, and whose state lives in a closure that
   student code cannot rebind) refusing instructor imports, ``ctypes`` and file access
   outside the allowed directories — defence in depth behind the kernel's checks.

A layer named in ``require`` that cannot be installed stops the worker before the student's
module is imported (``{"ready": false}``), so the grader never runs weaker than it announced.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import struct
import sys

__all__ = ["main"]

_LINE_LIMIT = 64 * 1024 * 1024
_MAX_LOG = 1 << 20  # RLIMIT_FSIZE: the worker's log (its stdout and stderr) stays under 1 MiB


def _options(argv: list[str]) -> tuple[dict, object, object]:
    """``--req FD --resp FD`` on the command line; everything else is the first request line.

    Paths stay off the command line, which every process on the machine can read.
    """
    fds = dict(zip(argv[::2], argv[1::2]))
    requests = os.fdopen(int(fds["--req"]), "r", encoding="utf-8")
    responses = os.fdopen(int(fds["--resp"]), "w", encoding="utf-8")
    opts = {"allow_read": [], "path": [], "require": []}
    opts.update(json.loads(requests.readline(_LINE_LIMIT) or "{}"))
    return opts, requests, responses


def _limit(opts: dict) -> None:
    """Hard limits the student cannot raise again."""
    mem = int(opts.get("mem", 1 << 30))
    cpu = int(opts.get("cpu", 120))
    for which, value in (
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, _MAX_LOG),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 256),
    ):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing


def _drop(opts: dict) -> None:
    """Become an unprivileged user (``nobody`` mode: the grader runs as root)."""
    if "drop_to" not in opts:
        return
    uid, gid = (int(x) for x in opts["drop_to"].split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("could not drop root")
    try:  # the process limit counts per uid: safe only once the worker has a uid of its own
        resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    except (ValueError, OSError):
        pass


# -- kernel layers (ctypes, before any student code; ctypes is refused afterwards) ----------------

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP = 1, 4, 38, 22

# Landlock (linux/landlock.h)
_LL_FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
_LL_READ = 4 | 8  # READ_FILE | READ_DIR
_LL_FILE_READ = 4
_LL_NET_ALL = 1 | 2  # BIND_TCP | CONNECT_TCP (ABI 4)
_LL_SCOPE_ALL = 1 | 2  # ABSTRACT_UNIX_SOCKET | SIGNAL (ABI 6)

# seccomp: syscall numbers per architecture (AUDIT_ARCH, max valid nr bound, tables)
_X86_64 = {
    "arch": 0xC000003E,
    "deny": [57, 58, 59, 322,  # fork vfork execve execveat
             62, 200, 234, 129, 297, 424, 434, 438,  # kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_*
             101, 310, 311, 312,  # ptrace process_vm_readv/writev kcmp
             41, 42, 43, 49, 50, 53, 288,  # socket connect accept bind listen socketpair accept4
             90, 91, 92, 93, 94, 268, 260, 452,  # chmod fchmod chown fchown lchown fchmodat fchownat fchmodat2
             112, 109, 165, 166, 272, 308, 161, 155,  # setsid setpgid mount umount2 unshare setns chroot pivot_root
             250, 248, 249, 321, 298, 323, 425, 426, 427, 135,  # keys bpf perf userfaultfd io_uring personality
             133, 259, 83, 258, 84, 82, 264, 316, 86, 265, 88, 266, 87, 263,  # mknod* mkdir* rmdir rename* link* symlink* unlink*
             76, 77, 85, 188, 189, 190, 197, 198, 199, 132, 235, 280, 261,  # truncate ftruncate creat *xattr utime*
             105, 106, 113, 114, 117, 119, 116,  # set*id setgroups
             319, 29, 303, 304, 300, 428, 429, 430, 431, 432, 433, 442],  # memfd shmget handles fanotify new mount api
    "enosys": [435, 437],  # clone3 (glibc falls back to clone), openat2
    "clone": 56, "open": {2: 1, 257: 2}, "prctl": 157,
}
_AARCH64 = {
    "arch": 0xC00000B7,
    "deny": [221, 281, 129, 130, 131, 138, 240, 424, 434, 438, 117, 270, 271, 272,
             198, 199, 200, 201, 202, 203, 242, 52, 53, 54, 55, 452,
             157, 154, 40, 39, 97, 268, 51, 41, 219, 217, 218, 280, 241, 282, 425, 426, 427, 92,
             33, 34, 35, 36, 37, 38, 276, 45, 46, 5, 6, 7, 14, 15, 16, 88,
             146, 144, 145, 143, 147, 149, 159, 279, 194, 264, 265, 262, 428, 429, 430, 431, 432, 433, 442],
    "enosys": [435, 437],
    "clone": 220, "open": {56: 2}, "prctl": 167,
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CLONE_THREAD = 0x10000


def _bpf(arch: dict) -> bytes:
    """The seccomp program for ``arch``: allow everything but the listed calls (EPERM/ENOSYS)."""
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38

    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    prog = [op(ld, 4), op(jeq, arch["arch"], 1, 0), op(ret, kill), op(ld, 0)]
    if arch["arch"] == 0xC000003E:
        prog += [op(jge, 0x40000000, 0, 1), op(ret, kill)]  # the x32 ABI's numbers: not allowed at all
    for nr in arch["deny"]:
        prog += [op(jeq, nr, 0, 1), op(ret, eperm)]
    for nr in arch["enosys"]:
        prog += [op(jeq, nr, 0, 1), op(ret, enosys)]
    # clone: threads only
    prog += [op(jeq, arch["clone"], 0, 4), op(ld, 16), op(jset, _CLONE_THREAD, 0, 1), op(ret, allow), op(ret, eperm)]
    # open/openat: reading only
    for nr, index in arch["open"].items():
        prog += [op(jeq, nr, 0, 4), op(ld, 16 + 8 * index), op(jset, _WRITE_FLAGS, 0, 1), op(ret, eperm), op(ret, allow)]
    # prctl: never dumpable again
    prog += [op(jeq, arch["prctl"], 0, 3), op(ld, 16), op(jeq, _PR_SET_DUMPABLE, 0, 1), op(ret, eperm)]
    prog += [op(ret, allow)]
    return b"".join(prog)


def _harden(opts: dict) -> list[str]:
    """Parent-death signal, non-dumpable, no_new_privs, Landlock, seccomp. Returns what is on."""
    on: list[str] = []
    try:
        import ctypes
    except ImportError:
        return on
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after _drop: changing user clears it
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return on
    if _landlock(ctypes, libc, opts):
        on.append("landlock")
    machine = os.uname().machine
    arch = {"x86_64": _X86_64, "aarch64": _AARCH64}.get(machine)
    if arch is not None:
        code = _bpf(arch)
        buf = ctypes.create_string_buffer(code, len(code))
        fprog = struct.pack("HxxxxxxQ", len(code) // 8, ctypes.addressof(buf))
        fbuf = ctypes.create_string_buffer(fprog, len(fprog))
        if libc.prctl(_PR_SET_SECCOMP, 2, fbuf, 0, 0) == 0:
            on.append("seccomp")
    return on


def _landlock(ctypes, libc, opts: dict) -> bool:  # noqa: ANN001 - the ctypes module, passed in
    """Allow reading only the allowed paths; nothing may be written, no signal leaves the domain."""
    nr = {"x86_64": 444, "aarch64": 444}.get(os.uname().machine)
    if nr is None:
        return False
    abi = libc.syscall(nr, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return False
    fs_all = _LL_FS_ALL[min(abi, 5)]
    if abi >= 6:
        attr = struct.pack("QQQ", fs_all, _LL_NET_ALL, _LL_SCOPE_ALL)
    elif abi >= 4:
        attr = struct.pack("QQ", fs_all, _LL_NET_ALL)
    else:
        attr = struct.pack("Q", fs_all)
    abuf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(nr, abuf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        for path in _readable(opts):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                is_dir = os.path.isdir(path)
                rule = struct.pack("=Qi", _LL_READ if is_dir else _LL_FILE_READ, fd)
                rbuf = ctypes.create_string_buffer(rule, len(rule))
                if libc.syscall(nr + 1, ruleset, 1, rbuf, ctypes.c_uint32(0)) != 0:
                    return False
            finally:
                os.close(fd)
        return libc.syscall(nr + 2, ruleset, ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)


def _readable(opts: dict) -> list[str]:
    """What the worker may read: the allowed folders, its scratch, Python and its libraries."""
    base = [os.path.realpath(p) for p in opts["allow_read"]] + [os.path.realpath(opts["scratch"])]
    python = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), os.path.realpath(sys.exec_prefix)}
    system = ["/usr", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/null"]
    return sorted(set(base) | python | {p for p in system if os.path.exists(p)})


def _guard(scratch: str, readable: list[str]) -> None:
    """Install the audit hook: no instructor imports, no processes, files only where allowed.

    Everything it uses is bound here, in the closure: rebinding a module global, ``os.path``,
    ``posixpath`` or a builtin from student code changes nothing the hook reads.
    """
    lstat, readlink, getcwd, fsdecode = os.lstat, os.readlink, os.getcwd, os.fsdecode
    is_link = __import__("stat").S_ISLNK
    str_, bytes_, int_, tuple_, isinstance_ = str, bytes, int, tuple, isinstance
    fspath, permission, import_error = os.fspath, PermissionError, ImportError
    blocked_modules = frozenset(("solutions", "tests", "dockerlab", "ctypes", "_ctypes", "_posixsubprocess",
                                 "pytest", "_pytest", "_xxsubinterpreters", "_testcapi", "_testinternalcapi"))
    blocked_events = tuple_((
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
        "os.kill", "os.killpg", "signal.pthread_kill", "socket.", "ctypes.", "os.chroot", "os.setuid",
        "sys.remote_exec", "cpython.run_", "os.startfile",
    ))
    write_events = frozenset((
        "os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.symlink", "os.link", "os.truncate",
        "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move",
    ))
    write_flags = _WRITE_FLAGS

    def resolve(path: str) -> str:
        """``realpath`` done here: symlinks resolved component by component, then ``..``."""
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        done: list[str] = []
        todo = [p for p in path.split("/") if p][::-1]
        hops = 0
        while todo:
            part = todo.pop()
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join(done + [part])
            try:
                link = is_link(lstat(candidate).st_mode)
            except OSError:
                link = False
            if link:
                hops += 1
                if hops > 40:
                    return "/"
                target = readlink(candidate)
                if target.startswith("/"):
                    done = []
                todo.extend([p for p in target.split("/") if p][::-1])
            else:
                done.append(part)
        return "/" + "/".join(done)

    def real(path: object) -> str | None:
        if isinstance_(path, int_) or path is None:
            return None
        try:
            if isinstance_(path, bytes_):
                path = fsdecode(path)
            return resolve(str_(fspath(path)) if not isinstance_(path, str_) else path)
        except Exception:  # noqa: BLE001 - anything odd is refused
            return "/"

    writable = tuple_((resolve(scratch), "/dev/null"))
    allowed = tuple_([resolve(p) for p in readable]) + writable

    def under(path: str, dirs: tuple) -> bool:
        for d in dirs:
            if path == d or path.startswith(d.rstrip("/") + "/"):
                return True
        return False

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            top = str_(args[0]).split(".")[0]
            if top in blocked_modules:
                raise import_error(f"the grading sandbox does not allow importing {top}")
        elif event.startswith(blocked_events):
            raise permission(f"the grading sandbox does not allow {event}")
        elif event == "open":
            path = real(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance_(mode, str_) and any(c in mode for c in "wax+")) or (
                isinstance_(flags, int_) and flags & write_flags
            )
            if not under(path, writable if writing else allowed):
                raise permission(f"the grading sandbox does not allow {'writing' if writing else 'reading'} this file")
        elif event in ("os.listdir", "os.scandir"):
            path = real(args[0] if args[0] is not None else ".")
            if path is not None and not under(path, allowed):
                raise permission("the grading sandbox does not allow listing this folder")
        elif event in write_events:
            for arg in args[:2]:
                path = real(arg) if isinstance_(arg, (str_, bytes_, os.PathLike)) else None
                if path is not None and not under(path, writable):
                    raise permission(f"the grading sandbox does not allow {event}")

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
    if not isinstance(message, str):
        message = "<unprintable message>"
    return [cls.__name__, message[:4000]]


def _send(fh, payload: dict) -> None:
    try:
        text = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"id": payload.get("id"), "error": ["TypeError", f"the answer is not plain data (str, int, list, dict, None): {exc}"]})
    except RecursionError:
        text = json.dumps({"id": payload.get("id"), "error": ["TypeError", "the answer is nested too deeply"]})
    except MemoryError:
        text = json.dumps({"id": payload.get("id"), "error": ["MemoryError", "the answer is too large"]})
    fh.write(text + "\n")
    fh.flush()


def main(argv: list[str] | None = None) -> int:
    opts, requests, responses = _options(sys.argv[1:] if argv is None else argv)
    _limit(opts)
    _drop(opts)
    scratch = opts["scratch"]
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin"})
    sys.path[:0] = opts["path"]
    sys.dont_write_bytecode = True
    import importlib

    import fakeroot_builder.errors  # noqa: F401 - the lab errors, for _error_of
    import fakeroot_builder.formats  # noqa: F401

    on = _harden(opts)
    for name in [m for m in sys.modules if m.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # so a later import is audited (and refused)
    missing = [layer for layer in opts["require"] if layer not in on]
    if missing:
        _send(responses, {"ready": False, "error": ["SandboxError", f"the sandbox could not enable {', '.join(missing)}"]})
        return 0
    _guard(scratch, _readable(opts))
    try:
        module = importlib.import_module(opts["module"])
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, anything
        _send(responses, {"ready": False, "error": _error_of(exc)})
        return 0
    _send(responses, {"ready": True, "layers": on})
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
