"""How a worker is started: the sandbox directory it gets and the command that isolates it.

Three modes, chosen once per process by :func:`info` (``$DOCKERLAB_SANDBOX`` forces one):

``bwrap``   bubblewrap: new namespaces (no network, own pids), an empty root holding only the
            Python installation and /usr read-only, the sandbox dir, the roots under test
            read-only, and a tmpfs ``/tmp``.
``nobody``  no working bubblewrap, started as root: each worker runs as a uid of its own
            (``$DOCKERLAB_SANDBOX_UID``, set per submission by the grader; else ``nobody``).
``plain``   neither: the worker runs as the grader's user.

Every mode adds the worker's own layers (``sandbox_main.py``): hard rlimits, non-dumpable,
Landlock where the kernel has it, a seccomp filter, and the audit hook. Which mode and which
layers are in force is found by *running the worker itself* in the candidate mode (the probe),
so a mode that cannot start a worker is never announced; falling back from ``bwrap`` to a
weaker mode is a warning (:attr:`SandboxInfo.warning`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import pwd
import py_compile
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SandboxDir", "SandboxInfo", "SandboxUnavailable", "command", "copy_labs", "info", "interpreter", "mode", "prepare",
           "reachable", "worker_ids"]

HERE = Path(__file__).resolve().parent
_BUILDER = HERE.parent.parent / "fakeroot_builder"
_SHIM_MODULES = ("errors.py", "formats.py", "bbolt.py")  # what lab code may import
MAX_FILE = 512 * 1024  #: bytes of one lab file
MAX_FILES = 200  #: lab files kept from one submission
MAX_TOTAL = 4 * 1024 * 1024  #: bytes of lab files kept from one submission
MAX_DEPTH = 8  #: folders below labs/
MAX_ENTRIES = 20_000  #: directory entries looked at in one submission
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

DESCRIPTIONS = {
    "bwrap": "bubblewrap: own namespaces (no network, own pids, own uid), only the submission and "
             "the roots under test visible, read-only",
    "nobody": "no bubblewrap: each submission's worker runs as a uid of its own; files, signals and "
              "processes are limited by the kernel layers listed",
    "plain": "no bubblewrap and not root: workers run as the grader's own user; only the kernel "
             "layers listed (and the audit hook) separate them from the grader and each other",
}


class SandboxUnavailable(RuntimeError):
    """No sandbox mode can start a worker here (or the forced one cannot)."""


#: The worker's script (``grader/sandbox_main.py``, the name every process list shows): it imports
#: this package's ``sandbox_main.py``, copied as ``grader/dockerlab_worker.py`` with its bytecode
#: (made here once per grader process, so no worker compiles it again), from its own folder,
#: which ``-I`` leaves off ``sys.path``.
_LAUNCHER = """import sys
sys.path.insert(0, __file__.rpartition("/")[0])
import dockerlab_worker
del sys.path[0]
sys.exit(dockerlab_worker.main())
"""


class SandboxDir:
    """``<base>/grader`` (worker + shim, read-only), ``submission/labs`` (read-only), ``home``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.grader = base / "grader"
        self.shim = base / "shim"
        self.submission = base / "submission"
        self.home = base / "home"

    @property
    def script(self) -> Path:
        return self.grader / "sandbox_main.py"


def copy_labs(source: Path, target: Path) -> list[str]:
    """Copy only ``labs/**/*.py`` (regular files, no symlinks anywhere on the way, size-capped).

    Iterative and bounded (depth, entries looked at, files and bytes kept), so a deep or huge
    tree costs little and never hits a recursion limit. Returns what was skipped. A ``labs``
    that is itself a symlink (``labs -> ../../solutions``) is skipped whole: only files that
    really are in the submission are graded.
    """
    if source.is_symlink():
        return [f"{source.name}: a symlink, not the submission's own folder"]
    if not source.is_dir():
        return []
    skipped: list[str] = []
    kept = total = seen = 0
    stack: list[tuple[str, tuple[str, ...]]] = [(str(source), ())]
    while stack:
        top, rel = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = []
                for entry in it:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        break
                    entries.append(entry)
        except OSError:
            continue
        if seen > MAX_ENTRIES:
            skipped.append(f"more than {MAX_ENTRIES} files and folders: the rest was not looked at")
            stack.clear()
        subdirs = []
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name
            shown = "/".join((*rel, name))
            if not set(name) <= _NAME_OK or name.startswith("."):
                skipped.append(f"{ascii(shown)}: not a plain file name")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{shown}: symlink")
            elif stat.S_ISDIR(st.st_mode):
                if len(rel) + 1 > MAX_DEPTH:
                    skipped.append(f"{shown}: more than {MAX_DEPTH} folders deep")
                else:
                    subdirs.append((entry.path, (*rel, name)))
            elif not name.endswith(".py"):
                continue
            elif not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
                skipped.append(f"{shown}: not a regular file of at most {MAX_FILE} bytes")
            elif name == "conftest.py" or kept >= MAX_FILES or total + st.st_size > MAX_TOTAL:
                skipped.append(f"{shown}: ignored")
            else:
                dest = target.joinpath(*rel)
                if not dest.is_dir():
                    part = target
                    for piece in rel:  # one level at a time: no recursion in mkdir(parents=True)
                        part = part / piece
                        part.mkdir(exist_ok=True)
                _copy_file(entry.path, dest / name)
                kept += 1
                total += st.st_size
        stack.extend(reversed(subdirs))
    return skipped


def _copy_file(src: str, dst: Path) -> None:
    """Copy at most MAX_FILE bytes of a regular file, never following a symlink."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        data = os.read(fd, MAX_FILE)
    finally:
        os.close(fd)
    dst.write_bytes(data)


@functools.lru_cache(maxsize=None)
def _bytecode(source: Path) -> bytes:
    """``source`` compiled once per process, checked against the source's hash (not its mtime),
    so the same bytes serve every copy; ``b""`` when it cannot be compiled here."""
    with tempfile.TemporaryDirectory(prefix="dockerlab-pyc-") as tmp:
        target = Path(tmp) / "module.pyc"
        try:
            py_compile.compile(str(source), cfile=str(target), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except (py_compile.PyCompileError, OSError):
            return b""
        return target.read_bytes()


def _install(source: Path, folder: Path, name: str = "") -> None:
    """Copy a trusted module into a sandbox folder, with its bytecode beside it (the worker runs
    with ``-B``: it reads bytecode but never writes it; a worker of another Python version
    looks for another file name and compiles the source)."""
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    code = _bytecode(source)
    if code:
        cached = Path(importlib.util.cache_from_source(str(target)))
        cached.parent.mkdir(exist_ok=True)
        cached.write_bytes(code)


def worker_ids() -> tuple[int, int]:
    """The uid and gid ``nobody``-mode workers run as: one per submission when the grader says."""
    own = os.environ.get("DOCKERLAB_SANDBOX_UID", "")
    if own.isdigit():
        return int(own), int(own)
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def prepare(base: Path, submission: Path, how: str | None = None) -> SandboxDir:
    """Lay out a fresh sandbox dir for ``submission`` (a folder holding ``labs/``)."""
    how = how or mode()
    box = SandboxDir(base)
    for d in (box.grader, box.shim, box.shim / "fakeroot_builder", box.submission, box.submission / "labs", box.home):
        d.mkdir(exist_ok=True)
    box.script.write_text(_LAUNCHER)
    _install(HERE / "sandbox_main.py", box.grader, "dockerlab_worker.py")
    (box.shim / "fakeroot_builder" / "__init__.py").write_text("")
    for name in _SHIM_MODULES:
        _install(_BUILDER / name, box.shim / "fakeroot_builder")
    copy_labs(submission / "labs", box.submission / "labs")
    if how == "nobody":
        uid, gid = worker_ids()
        os.chmod(base, 0o750)  # only the grader and this submission's worker may enter
        os.chown(base, -1, gid)
        for top, dirs, files in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(top, name), 0o755)
            for name in files:
                os.chmod(os.path.join(top, name), 0o644)
        os.chown(box.home, uid, gid)
        os.chmod(box.home, 0o700)
        reachable(base.parent)
    else:
        os.chmod(base, 0o755)
    return box


def reachable(path: Path) -> None:
    """Fallback mode: let other uids traverse to ``path`` (only through our own temporary dirs)."""
    bases = [Path(tempfile.gettempdir()).resolve()]
    for var in ("DOCKERLAB_SANDBOX_SCRATCH", "DOCKERLAB_CACHE", "DOCKERLAB_GRADE_SCRATCH"):
        if os.environ.get(var):
            bases.append(Path(os.environ[var]).resolve())
    real = Path(path).resolve()
    for parent in [real, *real.parents]:
        if not any(parent == b or b in parent.parents for b in bases):
            break
        st = parent.stat()
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(parent, st.st_mode | stat.S_IXOTH | (stat.S_IROTH if parent == real else 0))


def _world_reachable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [*path.parents][:-1])


@functools.lru_cache(maxsize=None)
def interpreter(unprivileged: bool = False) -> str:
    """A Python to run the worker: ours, or the system's when another uid cannot reach ours."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    ours = base if base.exists() else Path(os.path.realpath(sys.executable))
    if unprivileged and not _world_reachable(ours) and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return str(ours)


@functools.lru_cache(maxsize=None)
def _tmpfs_size() -> list[str]:
    """``--size N`` where bubblewrap knows it (0.8 and later): a small tmpfs, not a host dir."""
    try:
        out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["--size", str(16 << 20)] if "--size" in out else []


def _bwrap_prefix(box: SandboxDir, readable: list[str]) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--proc", "/proc", "--dev", "/dev",
            *_tmpfs_size(), "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    prefix = os.path.realpath(sys.base_prefix)
    if not prefix.startswith("/usr/"):
        args += ["--ro-bind", prefix, prefix]
        site = Path(prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        if site.is_dir():
            args += ["--tmpfs", str(site)]
    for d in (box.grader, box.shim, box.submission):
        args += ["--ro-bind", str(d), str(d)]
    args += [*_tmpfs_size(), "--tmpfs", str(box.home)]  # a small scratch of its own
    for path in readable:
        args += ["--ro-bind", os.path.realpath(path), path]
    return args + ["--chdir", str(box.home), "--setenv", "HOME", str(box.home), "--"]


def _argv_and_options(how: str, box: SandboxDir, module: str, lab: str, readable: list[str],
                      fds: tuple[int, int], mem: int, cpu: int, require: list[str]) -> tuple[list[str], dict]:
    python = interpreter(unprivileged=how == "nobody")
    argv = [python, "-I", "-S", "-B", str(box.script), "--req", str(fds[0]), "--resp", str(fds[1])]
    options = {
        "module": module, "lab": lab, "scratch": str(box.home), "mem": mem, "cpu": cpu,
        "path": [str(box.shim), str(box.submission)],
        "allow_read": [str(box.shim), str(box.submission), str(box.grader), *readable],
        "require": require,
    }
    if how == "bwrap":
        return _bwrap_prefix(box, readable) + argv, options
    if how == "nobody":
        uid, gid = worker_ids()
        options["drop_to"] = f"{uid}:{gid}"
    return argv, options


def command(box: SandboxDir, module: str, lab: str, readable: list[str], fds: tuple[int, int],
            *, mem: int, cpu: int) -> tuple[list[str], dict]:
    """The argv that starts a worker for ``lab`` (requests on ``fds[0]``, answers on ``fds[1]``),
    and the options to send it as its first request line."""
    state = info()
    module = "labs." + module.removesuffix(".py").replace("/", ".")
    return _argv_and_options(state.mode, box, module, lab, readable, fds, mem, cpu, list(state.layers))


# -- choosing the mode ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxInfo:
    """The mode in force, the worker's own layers that were found working, and any warning."""

    mode: str
    layers: tuple[str, ...] = ()
    warning: str = ""
    problems: dict[str, str] = field(default_factory=dict)
    #: How the grader holds a submission to its memory budget, once it knows (``cgroup v1``,
    #: ``cgroup v2`` or ``RLIMIT_AS``), and why there is no cgroup when there is none.
    memory: str = ""
    memory_why: str = ""

    @property
    def summary(self) -> str:
        """One line: ``bwrap + landlock + seccomp`` (``+ memory cgroup v1`` once the grader knows)."""
        return " + ".join((self.mode, *self.layers, *([f"memory {self.memory}"] if self.memory else [])))

    @property
    def description(self) -> str:
        mib = int(os.environ.get("DOCKERLAB_SANDBOX_MEM", 1 << 30)) >> 20
        if self.memory.startswith("cgroup"):
            memory = f"; memory: {mib} MiB per submission, all its processes together (a {self.memory} memory cgroup)"
        elif self.memory:
            memory = (f"; memory: {mib} MiB of address space per worker process (RLIMIT_AS; a worker cannot fork and "
                      f"a submission runs one at a time; no memory cgroup: {self.memory_why or 'none here'})")
        else:
            memory = ""
        return f"{self.summary} ({DESCRIPTIONS[self.mode]}{memory})"


def _probe(how: str) -> tuple[bool, tuple[str, ...], str]:
    """Start a real worker in mode ``how`` (the same command graded code gets) and ask it what is on."""
    if how == "bwrap" and shutil.which("bwrap") is None:
        return False, (), "bwrap is not installed"
    if how == "nobody" and os.geteuid() != 0:
        return False, (), "not root"
    tmp = Path(tempfile.mkdtemp(prefix="dockerlab-probe-"))
    req_r = req_w = resp_r = resp_w = -1
    try:
        (tmp / "empty").mkdir()
        (tmp / "box").mkdir()
        box = prepare(tmp / "box", tmp / "empty", how)
        if how == "nobody":
            reachable(tmp / "box")
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        argv, options = _argv_and_options(how, box, "fakeroot_builder.errors", "probe", [], (req_r, resp_w),
                                          256 << 20, 10, [])
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={}, pass_fds=(req_r, resp_w), start_new_session=True)
        os.close(req_r)
        os.close(resp_w)
        req_r = resp_w = -1
        os.write(req_w, (json.dumps(options) + "\n").encode())
        line, deadline = b"", time.monotonic() + 20
        while b"\n" not in line and time.monotonic() < deadline:
            if not select.select([resp_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            chunk = os.read(resp_r, 4096)
            if not chunk:
                break
            line += chunk
        os.close(req_w)
        req_w = -1
        try:
            err = proc.communicate(timeout=5)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1]
        try:
            answer = json.loads(line.split(b"\n")[0] or b"{}")
        except ValueError:
            answer = {}
        if answer.get("ready"):
            return True, tuple(sorted(answer.get("layers") or ())), ""
        why = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return False, (), why[0][:300]
    except OSError as exc:
        return False, (), str(exc)
    finally:
        for fd in (req_r, req_w, resp_r, resp_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _detect(forced: str) -> SandboxInfo:
    problems: dict[str, str] = {}
    candidates = [forced] if forced in ("bwrap", "nobody", "plain") else ["bwrap", "nobody", "plain"]
    for how in candidates:
        if how == "nobody" and os.geteuid() != 0:
            problems[how] = "needs the grader to run as root"
            continue
        ok, layers, why = _probe(how)
        if ok:
            warning = ""
            if how != "bwrap":
                reason = problems.get("bwrap", "not tried: $DOCKERLAB_SANDBOX=" + forced)
                warning = (f"WARNING: bubblewrap is not usable here ({reason}); grading falls back to the weaker "
                           f"'{how}' mode: {DESCRIPTIONS[how]}.")
            return SandboxInfo(how, layers, warning, problems)
        problems[how] = why
    detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
    raise SandboxUnavailable(f"no sandbox mode can start a worker here ({detail})")


def info() -> SandboxInfo:
    """The sandbox mode in force (probed once per process and ``$DOCKERLAB_SANDBOX`` value)."""
    return _detect(os.environ.get("DOCKERLAB_SANDBOX", "auto"))


def mode() -> str:
    """``bwrap``, ``nobody`` or ``plain`` (``$DOCKERLAB_SANDBOX`` forces one)."""
    return info().mode
