"""How a worker is started: the sandbox directory it gets and the command that isolates it.

Three modes, chosen once per process by :func:`mode` (``$DOCKERLAB_SANDBOX`` overrides):

``bwrap``   bubblewrap: new namespaces (no network, own pids), an empty root holding only the
            Python installation and /usr read-only, the sandbox dir (its ``home`` writable),
            the roots under test read-only, and a tmpfs ``/tmp``.
``nobody``  no working bubblewrap, started as root: the worker drops to ``nobody``.
``plain``   neither: only the limits and the audit hook of the worker itself.

All modes add the worker's own hard rlimits and audit hook (see ``sandbox_main.py``).
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["SandboxDir", "command", "copy_labs", "interpreter", "mode", "prepare", "reachable"]

HERE = Path(__file__).resolve().parent
_BUILDER = HERE.parent.parent / "fakeroot_builder"
_SHIM_MODULES = ("errors.py", "formats.py", "bbolt.py")  # what lab code may import
MAX_FILE = 512 * 1024
MAX_FILES = 200


class SandboxDir:
    """``<base>/grader`` (worker + shim, read-only), ``submission/labs`` (read-only), ``home`` (rw)."""

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

    Returns what was skipped. A ``labs`` that is itself a symlink (``labs -> ../../solutions``)
    is skipped whole: only files that really are in the submission are graded.
    """
    if source.is_symlink():
        return [f"{source.name}: a symlink, not the submission's own folder"]
    if not source.is_dir():
        return []
    skipped: list[str] = []
    count = 0
    for top, dirs, files in os.walk(source, followlinks=False):
        for d in [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            skipped.append(f"{Path(top, d).relative_to(source)}: symlink")
            dirs.remove(d)
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = Path(top, name)
            rel = path.relative_to(source)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                skipped.append(f"{rel}: symlink")
            elif not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
                skipped.append(f"{rel}: not a regular file of at most {MAX_FILE} bytes")
            elif name == "conftest.py" or count >= MAX_FILES:
                skipped.append(f"{rel}: ignored")
            else:
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest, follow_symlinks=False)
                count += 1
    return skipped


def prepare(base: Path, submission: Path) -> SandboxDir:
    """Lay out a fresh sandbox dir for ``submission`` (a folder holding ``labs/``)."""
    box = SandboxDir(base)
    for d in (box.grader, box.shim / "fakeroot_builder", box.submission / "labs", box.home):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "sandbox_main.py", box.script)
    (box.shim / "fakeroot_builder" / "__init__.py").write_text("")
    for name in _SHIM_MODULES:
        shutil.copyfile(_BUILDER / name, box.shim / "fakeroot_builder" / name)
    copy_labs(submission / "labs", box.submission / "labs")
    os.chmod(base, 0o755)
    if mode() == "nobody":
        nobody = pwd.getpwnam("nobody")
        os.chown(box.home, nobody.pw_uid, nobody.pw_gid)
        reachable(base)
    return box


def reachable(path: Path) -> None:
    """Fallback mode: let ``nobody`` traverse to ``path`` (only through our own temporary dirs)."""
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
    """A Python to run the worker: ours, or the system's when ``nobody`` cannot reach ours."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    ours = base if base.exists() else Path(os.path.realpath(sys.executable))
    if unprivileged and not _world_reachable(ours) and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return str(ours)


def _bwrap_prefix(box: SandboxDir, readable: list[str]) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--ro-bind", "/usr", "/usr"]
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
    args += ["--bind", str(box.home), str(box.home)]
    for path in readable:
        args += ["--ro-bind", os.path.realpath(path), path]
    return args + ["--chdir", str(box.home), "--setenv", "HOME", str(box.home), "--"]


@functools.lru_cache(maxsize=None)
def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    try:
        probe = subprocess.run(
            ["bwrap", "--unshare-all", "--die-with-parent", "--uid", "65534", "--gid", "65534",
             "--ro-bind", "/", "/", "--", "/bin/true"],
            capture_output=True, timeout=10, env={},
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def mode() -> str:
    """``bwrap``, ``nobody`` or ``plain`` (``$DOCKERLAB_SANDBOX`` forces one)."""
    forced = os.environ.get("DOCKERLAB_SANDBOX", "auto")
    if forced in ("bwrap", "nobody", "plain"):
        return forced
    if _bwrap_works():
        return "bwrap"
    return "nobody" if os.geteuid() == 0 else "plain"


def command(box: SandboxDir, module: str, lab: str, readable: list[str], fds: tuple[int, int],
            *, mem: int, cpu: int) -> list[str]:
    """The argv that starts a worker for ``lab`` reading requests on ``fds[0]``, answering on ``fds[1]``."""
    how = mode()
    python = interpreter(unprivileged=how == "nobody")
    tail = [python, "-I", "-S", str(box.script), "--req", str(fds[0]), "--resp", str(fds[1]),
            "--module", "labs." + module.removesuffix(".py").replace("/", "."), "--lab", lab, "--scratch", str(box.home),
            "--mem", str(mem), "--cpu", str(cpu)]
    tail += ["--path", str(box.shim), "--path", str(box.submission)]
    for path in [str(box.shim), str(box.submission), *readable]:
        tail += ["--allow-read", path]
    if how == "bwrap":
        return _bwrap_prefix(box, readable) + tail
    if how == "nobody":
        nobody = pwd.getpwnam("nobody")
        tail += ["--drop-to", f"{nobody.pw_uid}:{nobody.pw_gid}"]
    return tail
