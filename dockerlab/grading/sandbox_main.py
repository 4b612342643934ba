"""The sandboxed worker: imports ONE student lab module and answers calls to its functions.

Standard library only, copied into each sandbox as ``grader/dockerlab_worker.py`` with its
bytecode and run as ``python3 -I -S -B grader/sandbox_main.py`` (a launcher that imports it: see
:func:`dockerlab.grading.sandbox.prepare`) by
:mod:`dockerlab.grading.worker` (inside bubblewrap when available). It is the only process that
ever runs student code.

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


#: The audit event the worker raises before each call: the hook forgets the folders it learned.
CALL_EVENT = "dockerlab.worker.call"


def _guard(scratch: str, readable: list[str]) -> None:
    """Install the audit hook: no instructor imports, no processes, files only where allowed.

    The hook is ONE function whose closure holds only immutable values (str, tuples, frozensets)
    and builtins, and it never runs student code (no ``__fspath__``, ``__str__``, ``__class__``
    or rebindable builtin is called: path arguments are read with ``str.__str__`` and
    ``bytes.decode``). So student code that reaches the hook's frame (the traceback of a refusal,
    a signal handler or finaliser running inside it) finds nothing to rebind; ``gc`` and
    ``sys._current_frames``, which would reach the hook function and its cells, are refused.

    Paths are resolved like :func:`os.path.realpath`, component by component with ``lstat``
    (symlinks first, then ``..``). To make that cheap, the hook remembers, until the next
    call (:data:`CALL_EVENT`), which folders it found to be real folders, not symlinks, but
    only where the worker cannot change them: in or above the read-only folders, never in or
    under the writable scratch. Within one call nothing there changes (the worker may not
    create, rename or remove anything outside its scratch; the grader changes roots only
    between calls), and a remembered folder that disappears resolves the same as before (a
    missing component is not a symlink either). Files and symlinks are never remembered.
    """
    lstat, readlink, getcwd = os.lstat, os.readlink, os.getcwd
    _stat = __import__("stat")
    is_link, is_dir = _stat.S_ISLNK, _stat.S_ISDIR
    str_, bytes_, int_, type_, len_, issubclass_, frozenset_ = str, bytes, int, type, len, issubclass, frozenset
    as_str, decode, int_and = str.__str__, bytes.decode, int.__and__
    encoding = sys.getfilesystemencoding()
    permission, import_error, oserror, exception_ = PermissionError, ImportError, OSError, Exception
    blocked_modules = frozenset(("solutions", "tests", "dockerlab", "ctypes", "_ctypes", "_posixsubprocess",
                                 "pytest", "_pytest", "_xxsubinterpreters", "_testcapi", "_testinternalcapi"))
    blocked_events = (
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
        "os.kill", "os.killpg", "signal.pthread_kill", "socket.", "ctypes.", "os.chroot", "os.setuid",
        "sys.remote_exec", "cpython.run_", "os.startfile",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",  # the hook's own state
    )
    # each write event, and where its dir_fd arguments are (a path relative to a dir_fd is refused:
    # the hook could only resolve it against the working directory)
    write_dir_fds = (
        ("os.mkdir", (2,)), ("os.rmdir", (1,)), ("os.remove", (1,)), ("os.rename", (2, 3)),
        ("os.symlink", (2,)), ("os.link", (2, 3)), ("os.truncate", ()), ("os.chmod", (2,)),
        ("os.chown", (3,)), ("os.utime", (3,)), ("shutil.rmtree", (1,)), ("shutil.copyfile", ()),
        ("shutil.move", ()),
    )
    write_events = frozenset(name for name, _ in write_dir_fds)
    write_flags, call_event = _WRITE_FLAGS, CALL_EVENT

    def realpath(path: str) -> str:  # only here, before the hook exists; the hook inlines it
        done: list[str] = []
        todo = [p for p in path.split("/") if p][::-1]
        hops = 0
        while todo:
            part = todo.pop()
            if part == "..":
                if done:
                    done.pop()
            elif part != ".":
                candidate = "/" + "/".join(done + [part])
                try:
                    link = is_link(lstat(candidate).st_mode)
                except OSError:
                    link = False
                if not link:
                    done.append(part)
                    continue
                hops += 1
                if hops > 40:
                    return "/"
                target = readlink(candidate)
                if target.startswith("/"):
                    done = []
                todo.extend([p for p in target.split("/") if p][::-1])
        return "/" + "/".join(done)

    writable = (realpath(scratch), "/dev/null")
    allowed = tuple(dict.fromkeys([realpath(p) for p in readable] + list(writable)))
    writable_slash = tuple(d.rstrip("/") + "/" for d in writable)
    allowed_slash = tuple(d.rstrip("/") + "/" for d in allowed)
    writable_set, allowed_set = frozenset(writable), frozenset(allowed)
    # where a real folder may be remembered: in or above a read-only folder, not in the scratch
    stable = tuple(d for d in allowed if d not in writable_set and not d.startswith(writable_slash))
    stable_slash = tuple(d.rstrip("/") + "/" for d in stable)
    above_stable = frozenset("/".join(d.split("/")[:i]) for d in stable for i in range(2, len(d.split("/")) + 1))
    only_root = ("",)  # "" is "/": never a symlink
    known = frozenset(only_root)
    most = 4096  # folders remembered in one call (beyond: plain lstat)

    def hook(event: str, args: tuple) -> None:
        nonlocal known
        if event == "open":
            targets, mode = args[:1], args[1]
            flags = args[2] if len_(args) > 2 else 0
            if type_(mode) is not str_ and issubclass_(type_(mode), str_):
                mode = as_str(mode)
            writing = type_(mode) is str_ and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            if not writing and issubclass_(type_(flags), int_):
                writing = int_and(flags, write_flags) != 0
            if writing:
                dirs, dirs_slash, refusal = writable_set, writable_slash, "writing this file"
            else:
                dirs, dirs_slash, refusal = allowed_set, allowed_slash, "reading this file"
        elif event == "import":
            name = args[0]
            if type_(name) is not str_:
                name = as_str(name)  # a str subclass is read without its methods; anything else is refused
            top = name.partition(".")[0]
            if top in blocked_modules:
                raise import_error(f"the grading sandbox does not allow importing {top}")
            return
        elif event == "os.listdir" or event == "os.scandir":
            targets = args[:1] if args[0] is not None else (".",)
            dirs, dirs_slash = allowed_set, allowed_slash
            refusal = "listing this folder"
        elif event in write_events:
            for name, spots in write_dir_fds:
                if name == event:
                    for spot in spots:
                        fd = args[spot] if spot < len_(args) else None
                        if fd is not None and not (type_(fd) is int_ and fd == -1):
                            raise permission(f"the grading sandbox does not allow {event} with dir_fd")
            targets, dirs, dirs_slash, refusal = args[:2], writable_set, writable_slash, event
        elif event == call_event:
            known = frozenset_(only_root)  # a new object: a walk begun before this never adds to it
            return
        elif event.startswith(blocked_events):
            raise permission(f"the grading sandbox does not allow {event}")
        else:
            return
        for path in targets:
            kind = type_(path)
            if kind is str_:
                pass
            elif kind is bytes_:
                path = decode(path, encoding, "surrogateescape")
            elif path is None or issubclass_(kind, int_):
                continue  # a file descriptor: already open
            elif issubclass_(kind, str_):
                path = as_str(path)
            elif issubclass_(kind, bytes_):
                path = decode(path, encoding, "surrogateescape")
            else:
                raise permission(f"the grading sandbox does not allow {refusal}")  # os.PathLike and the like: converted before the event
            # -- realpath(path), remembering real folders (see the docstring) --
            try:
                if not path.startswith("/"):
                    path = getcwd() + "/" + path
                cut = path.rfind("/")
                last = path[cut + 1:]
                resolved = ""
                if path[:cut] in known and last and last != "." and last != "..":
                    try:  # the folder is known: only the last component can be a symlink
                        bits = lstat(path).st_mode
                    except oserror:
                        bits = 0
                    if not is_link(bits):
                        resolved = path
                if not resolved:
                    stack, todo, hops, fresh, base = [""], path.split("/"), 0, [], known
                    todo.reverse()
                    while todo:
                        part = todo.pop()
                        if not part or part == ".":
                            continue
                        if part == "..":
                            if len_(stack) > 1:
                                stack.pop()
                            continue
                        candidate = stack[-1] + "/" + part
                        if candidate in known:
                            stack.append(candidate)
                            continue
                        try:
                            bits = lstat(candidate).st_mode
                        except oserror:
                            bits = 0
                        if is_link(bits):
                            hops += 1
                            if hops > 40:
                                stack = ["/"]
                                break
                            target = readlink(candidate)
                            if target.startswith("/"):
                                stack = [""]
                            target = target.split("/")
                            target.reverse()
                            todo.extend(target)
                            continue
                        stack.append(candidate)
                        if (is_dir(bits) and candidate not in writable_set and not candidate.startswith(writable_slash)
                                and (candidate in above_stable or candidate.startswith(stable_slash))):
                            fresh.append(candidate)
                    resolved = stack[-1] or "/"
                    if fresh and known is base and len_(known) < most:  # not across a CALL_EVENT
                        known = known.union(fresh)
            except exception_:  # noqa: BLE001 - anything odd is refused
                resolved = "/"
            if resolved not in dirs and not resolved.startswith(dirs_slash):
                raise permission(f"the grading sandbox does not allow {refusal}")

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
    audit, call_event = sys.audit, CALL_EVENT  # bound before any student code runs
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
        audit(call_event)
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
