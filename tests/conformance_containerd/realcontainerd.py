"""Run a real containerd (Debian's 1.6, or 2.x unpacked from Debian's package) for conformance tests.

Standard library only. A :class:`Containerd` runs one ``containerd`` in a fresh temporary
directory holding its root, state, sockets, config and log (the configs of
``shared/reference/containerd/config-*.toml``: CRI and unused snapshotters off), so the host's
``/var/lib/containerd`` and ``/run/containerd`` are never used; it talks over a unix socket only.
It can also start on a root we built (``root=``), which it then owns until stopped.

Where the binaries come from:

- ``"1.6"``: ``/usr/bin/containerd`` and ``ctr`` (Debian 12: ``apt-get install containerd``).
- ``"2"``: ``$DOCKERLAB_CONTAINERD2/usr/bin/`` (default ``<dockerlab cache>/containerd2``) --
  Debian unstable's package unpacked with ``dpkg-deb -x``;
  ``tests/conformance_containerd/get-containerd2.sh [DIR]`` fetches it with a private apt
  configuration (``/etc/apt`` untouched).

Typical use::

    with Containerd("2") as c:
        c.ctr("images", "import", "busybox.tar")
        print(c.ctr("images", "ls"))

Stopping: SIGTERM by pid (then SIGKILL), shims started for this root killed by pid, everything
mounted under the temp dir or the root unmounted. Needs root (overlayfs mounts, runc).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "VERSIONS",
    "Containerd",
    "ContainerdError",
    "CtrError",
    "available",
    "binaries",
    "containerd2_dir",
    "on_ci",
    "require",
]

#: The containerd versions the conformance suite runs against.
VERSIONS = ("1.6", "2")

_CONFIG = {
    "1.6": (
        2,
        [
            "io.containerd.grpc.v1.cri",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.aufs",
        ],
    ),
    "2": (
        3,
        [
            "io.containerd.grpc.v1.cri",
            "io.containerd.cri.v1.images",
            "io.containerd.cri.v1.runtime",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.blockfile",
            "io.containerd.snapshotter.v1.erofs",
        ],
    ),
}
_MNT_DETACH = 2


class ContainerdError(RuntimeError):
    """containerd could not be found, started or stopped."""


class CtrError(subprocess.CalledProcessError):
    """A ``ctr`` command failed; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr:\n{(self.stderr or '').strip()}"


def containerd2_dir() -> Path:
    """``$DOCKERLAB_CONTAINERD2``, else ``<dockerlab cache>/containerd2`` (get-containerd2.sh's default)."""
    if os.environ.get("DOCKERLAB_CONTAINERD2"):
        return Path(os.environ["DOCKERLAB_CONTAINERD2"])
    cache = os.environ.get("DOCKERLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dockerlab"
    )
    return Path(cache) / "containerd2"


def binaries(version: str) -> tuple[Path, Path] | str:
    """``(containerd, ctr)`` for ``version``, or the reason they cannot be found."""
    if version == "1.6":
        bindir = Path("/usr/bin")
        hint = "apt-get install -y containerd"
    elif version == "2":
        top = containerd2_dir()
        bindir = top / "usr" / "bin"
        hint = f"run tests/conformance_containerd/get-containerd2.sh {top}"
    else:
        raise ValueError(f"containerd version {version!r}: not one of {VERSIONS}")
    daemon, ctr = bindir / "containerd", bindir / "ctr"
    for binary in (daemon, ctr):
        if not os.access(binary, os.X_OK):
            return f"{binary} missing ({hint})"
    out = subprocess.run([daemon, "--version"], capture_output=True, text=True, check=False).stdout
    want = "containerd/v2 2." if version == "2" else " 1.6."
    if want not in out:
        return f"{daemon} is not containerd {version}: {out.strip()!r}"
    return daemon, ctr


def available(version: str) -> str | None:
    """None when containerd ``version`` can run here, else why not."""
    if os.geteuid() != 0:
        return "containerd needs root (overlayfs mounts, runc)"
    if not shutil.which("runc"):
        return "runc missing (apt-get install -y runc)"
    found = binaries(version)
    return found if isinstance(found, str) else None


def on_ci() -> bool:
    """``CI`` is set (to anything but ""/0/false/no): missing tools fail instead of skipping."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(version: str) -> str | None:
    """Like :func:`available`, but raise when ``CI`` is set: there a missing daemon fails the run."""
    reason = available(version)
    if reason and on_ci():
        raise ContainerdError(f"CI is set but containerd {version} cannot run: {reason}")
    return reason


def _mounts_under(*prefixes: Path) -> list[str]:
    """Mount points at or below any of ``prefixes``, deepest first."""
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        point = fields[4].encode().decode("unicode_escape").encode("latin-1").decode()
        for prefix in prefixes:
            if point == str(prefix) or point.startswith(f"{prefix}/"):
                found.add(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def _umount_all(*prefixes: Path) -> list[str]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for _ in range(5):
        points = _mounts_under(*prefixes)
        if not points:
            return []
        for point in points:
            if libc.umount2(point.encode(), _MNT_DETACH) != 0 and ctypes.get_errno() not in (
                errno.EINVAL,
                errno.ENOENT,
            ):
                pass
    return _mounts_under(*prefixes)


def _pids_mentioning(marker: str) -> list[int]:
    """Pids (not ours) whose command line contains ``marker`` -- a unique temp dir path."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


class Containerd:
    """A throw-away containerd: ``version`` "1.6" or "2", on ``root`` (default: a fresh one).

    :attr:`workdir` holds ``state/``, ``run/`` (the sockets), ``config.toml``,
    ``containerd.log`` and, unless ``root`` is given, ``root/``.
    """

    def __init__(self, version: str, root: str | os.PathLike | None = None, base_dir: str | None = None) -> None:
        found = binaries(version)
        if isinstance(found, str):
            raise ContainerdError(found)
        self.version = version
        self.binary, self.ctr_binary = found
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ctrd{version}-", dir=base_dir or "/tmp"))
        self.root = Path(root) if root is not None else self.workdir / "root"
        self.state = self.workdir / "state"
        self.run_dir = self.workdir / "run"
        self.socket = self.run_dir / "containerd.sock"
        self.log_path = self.workdir / "containerd.log"
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        # containerd finds its shim on PATH: this version's own first.
        env["PATH"] = f"{self.binary.parent}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.pop("CONTAINERD_ADDRESS", None)
        env.pop("CONTAINERD_NAMESPACE", None)
        return env

    def config_text(self) -> str:
        schema, disabled = _CONFIG[self.version]
        plugins = ", ".join(f'"{p}"' for p in disabled)
        return (
            f'version = {schema}\nroot = "{self.root}"\nstate = "{self.state}"\n'
            f"disabled_plugins = [{plugins}]\n\n"
            f'[grpc]\n  address = "{self.socket}"\n\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n\n'
            f'[debug]\n  address = "{self.run_dir}/debug.sock"\n  level = "debug"\n'
        )

    def start(self, timeout: float = 60) -> Containerd:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.toml"
        config.write_text(self.config_text())
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [str(self.binary), "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ContainerdError(
                    f"containerd {self.version} exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if self.socket.exists():
                probe = subprocess.run(
                    self._ctr_argv("version"), capture_output=True, text=True, env=self._env(), check=False
                )
                if probe.returncode == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise ContainerdError(f"containerd {self.version} did not answer in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError as exc:
            return f"<no log: {exc}>"

    def _ctr_argv(self, *args: str, namespace: str | None = None) -> list[str]:
        argv = [str(self.ctr_binary), "--address", str(self.socket)]
        if namespace:
            argv += ["--namespace", namespace]
        return argv + list(args)

    def ctr(self, *args: str, namespace: str = "moby", timeout: float = 120, check: bool = True) -> str:
        """Run ``ctr --namespace NAMESPACE ARGS`` against this daemon; return its stdout."""
        argv = self._ctr_argv(*args, namespace=namespace)
        done = subprocess.run(argv, capture_output=True, text=True, env=self._env(), timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise CtrError(done.returncode, argv, done.stdout, done.stderr)
        return done.stdout

    def stop(self, grace: float = 20) -> None:
        """Stop the daemon by pid, kill this root's shims by pid, unmount what it mounted."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=30)
        for pid in _pids_mentioning(str(self.socket)) + _pids_mentioning(str(self.state)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        left = _umount_all(self.workdir, self.root)
        if self._log is not None:
            self._log.close()
            self._log = None
        if left:
            raise ContainerdError(f"could not unmount: {left}")

    def cleanup(self) -> None:
        """Remove the temp dir (not a ``root`` we were given)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Containerd:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
