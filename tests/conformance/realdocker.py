"""Run a real Docker daemon and a local registry for conformance tests.

Everything here is standard library only. A :class:`Daemon` runs ``dockerd``
(overlay2 storage driver, classic image store) in a fresh temporary directory
that holds its data-root, exec-root, socket, pidfile, log and config, so the
host's ``/var/lib/docker`` is never used. A :class:`Registry` runs Debian's
``docker-registry`` on ``127.0.0.1`` only. :func:`push_blobs_and_manifest`
uploads hand-made blobs and a manifest to it through the registry HTTP API v2,
so that ``docker pull`` stores exactly our compressed digests and manifest
digest. :func:`tree_listing` renders a data root in the format of
``shared/reference/docker-20.10-pull/tree-listing.txt``.

Requirements (Debian 12): ``apt-get install -y docker.io docker-registry
busybox-static``; root; the temporary directory on a filesystem that can be an
overlay upper dir (ext4, xfs, tmpfs -- not overlayfs itself).

Typical use::

    with Daemon() as d:
        d.docker("load", "-i", str(archive))
        lines = tree_listing(d.data_root)

Known side effect: dockerd 20.10 always creates the empty directory
``/run/docker/plugins`` (hard-coded plugin discovery path). Nothing else is
written outside the temporary directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "DOCKER",
    "DOCKERD",
    "REGISTRY",
    "MANIFEST_V2",
    "Daemon",
    "DaemonError",
    "DockerCommandError",
    "Registry",
    "available",
    "require",
    "push_blobs_and_manifest",
    "schema2_manifest",
    "tree_listing",
]


def _pick(env_var: str, candidates: Sequence[str]) -> str:
    """Return the binary named by ``env_var`` or the first existing candidate."""
    chosen = os.environ.get(env_var)
    if chosen:
        return chosen
    for cand in candidates:
        if os.path.isabs(cand):
            if os.access(cand, os.X_OK):
                return cand
        else:
            found = shutil.which(cand)
            if found:
                return found
    return candidates[0]


#: Docker CLI. Debian's client (same version as the daemon) is preferred over
#: any other ``docker`` on PATH, e.g. a newer one in /usr/local/bin.
DOCKER: str = _pick("REALDOCKER_DOCKER", ["/usr/bin/docker", "docker"])
#: The daemon binary.
DOCKERD: str = _pick("REALDOCKER_DOCKERD", ["/usr/sbin/dockerd", "dockerd"])
#: Debian's registry (github.com/distribution/distribution) binary.
REGISTRY: str = _pick("REALDOCKER_REGISTRY", ["/usr/bin/docker-registry", "docker-registry"])

#: Media types of a Docker image manifest (schema 2) and its parts.
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
_CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

_FORBIDDEN_ROOT = Path("/var/lib/docker")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_MNT_DETACH = 2


class DaemonError(RuntimeError):
    """dockerd or the registry could not be started or stopped."""


class DockerCommandError(subprocess.CalledProcessError):
    """A ``docker`` command failed; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        err = self.stderr
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        return f"{super().__str__()}\nstderr:\n{(err or '').strip()}"


def _clean_env() -> dict[str, str]:
    """Environment without proxies, so nothing leaves 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env.pop("DOCKER_HOST", None)
    env.pop("DOCKER_CONTEXT", None)
    env["NO_PROXY"] = env["no_proxy"] = "*"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a text file, or a note that it is missing."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _major_version(binary: str) -> int:
    """Major version of a ``dockerd``, 0 when it cannot be told."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return 0
    # "Docker version 20.10.24+dfsg1, build 5d6db84"
    for word in out.split():
        head = word.split(".")[0]
        if "." in word and head.isdigit():
            return int(head)
    return 0


def _mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below ``prefix`` from /proc/self/mountinfo, deepest first."""
    found: list[str] = []
    base = str(prefix)
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        # mountinfo escapes space, tab, newline and backslash as \ooo.
        point = fields[4].encode().decode("unicode_escape").encode("latin-1").decode()
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _umount_all(prefix: Path) -> list[str]:
    """Lazily unmount everything under ``prefix``; return what could not be."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    failed: list[str] = []
    for _ in range(5):  # stacked mounts need several passes
        points = _mounts_under(prefix)
        if not points:
            return []
        failed = []
        for point in points:
            if libc.umount2(point.encode(), _MNT_DETACH) != 0:
                err = ctypes.get_errno()
                if err not in (errno.EINVAL, errno.ENOENT):
                    failed.append(f"{point}: {os.strerror(err)}")
    return failed or _mounts_under(prefix)


def _pids_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (a unique temp dir path)."""
    pids: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc`` by pid, wait up to ``grace`` seconds, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Daemon:
    """A throw-away ``dockerd`` (overlay2, classic image store) in a temp dir.

    Layout of :attr:`workdir`: ``root/`` (data-root, also :attr:`data_root`),
    ``exec/`` (exec-root), ``docker.sock``, ``docker.pid``, ``dockerd.log``,
    ``daemon.json``, ``client/`` (``DOCKER_CONFIG`` of the CLI).

    Args:
        base_dir: where to create the temp dir (default: ``tempfile.gettempdir()``);
            must support overlay upper dirs and keep socket paths under 108 bytes.
        timeout: seconds to wait for the daemon to answer.
        extra_args: more dockerd flags.
    """

    def __init__(
        self,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.timeout = timeout
        self.extra_args = list(extra_args)
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if self.workdir is None:
            raise DaemonError("daemon not started")
        return self.workdir / name

    @property
    def data_root(self) -> Path:
        """The daemon's ``--data-root`` (what /var/lib/docker would be)."""
        return self._path("root")

    @property
    def exec_root(self) -> Path:
        """The daemon's ``--exec-root``."""
        return self._path("exec")

    @property
    def socket(self) -> Path:
        """The daemon's unix socket."""
        return self._path("docker.sock")

    @property
    def host(self) -> str:
        """Value for ``docker -H``."""
        return f"unix://{self.socket}"

    @property
    def log_path(self) -> Path:
        """File holding dockerd's stdout and stderr."""
        return self._path("dockerd.log")

    @property
    def pid(self) -> int | None:
        """Pid of the running dockerd, if any."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    # -- lifecycle -----------------------------------------------------------
    def command(self) -> list[str]:
        """Return the dockerd command line used by :meth:`start`."""
        return [
            DOCKERD,
            "--config-file", str(self._path("daemon.json")),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self._path("docker.pid")),
            "--host", self.host,
            "--storage-driver", "overlay2",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            "--ip", "127.0.0.1",
            "--userland-proxy=false",
            "--shutdown-timeout", "2",
            *self.extra_args,
        ]

    def start(self) -> Daemon:
        """Start dockerd and wait until ``docker version`` answers."""
        if self._proc is not None:
            raise DaemonError("daemon already started")
        if os.geteuid() != 0:
            raise DaemonError("dockerd needs root")
        self.workdir = Path(tempfile.mkdtemp(prefix="rd-", dir=self.base_dir)).resolve()
        if self.workdir == _FORBIDDEN_ROOT or _FORBIDDEN_ROOT in self.workdir.parents:
            raise DaemonError(f"refusing to run under {_FORBIDDEN_ROOT}")
        self._path("client").mkdir()
        config: dict[str, object] = {}
        if 0 < _major_version(DOCKERD) < 23:
            # dockerd <= 22 writes its libtrust key to /etc/docker/key.json by default.
            config["deprecated-key-path"] = str(self._path("key.json"))
        self._path("daemon.json").write_text(json.dumps(config))
        env = _clean_env()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.timeout
        last = ""
        while True:
            if self._proc.poll() is not None:
                msg = f"dockerd exited with {self._proc.returncode}"
                break
            if self.socket.exists():
                res = subprocess.run(
                    [DOCKER, "-H", self.host, "version", "--format", "{{.Server.Version}}"],
                    capture_output=True, text=True, env=self._client_env(), timeout=30,
                    check=False,
                )
                if res.returncode == 0:
                    return self
                last = res.stderr.strip()
            if time.monotonic() > deadline:
                msg = f"dockerd did not answer within {self.timeout:.0f}s ({last})"
                break
            time.sleep(0.2)
        tail = _tail(self.log_path)
        self.stop()
        raise DaemonError(f"{msg}\n--- tail of dockerd log ---\n{tail}")

    def stop(self) -> None:
        """Stop dockerd (SIGTERM, wait, SIGKILL), unmount leftovers, remove the temp dir."""
        if self.workdir is None:
            return
        workdir = self.workdir
        if self._proc is not None:
            _terminate(self._proc, grace=30)
            self._proc = None
        # containerd, shims or containers that outlived dockerd: all of them name
        # our unique temp dir on their command line.
        for pid in _pids_mentioning(str(workdir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        left = _umount_all(workdir)
        if left:
            raise DaemonError(f"could not unmount under {workdir}: {left}")
        shutil.rmtree(workdir, ignore_errors=True)
        self.workdir = None

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- client --------------------------------------------------------------
    def _client_env(self) -> dict[str, str]:
        env = _clean_env()
        env["DOCKER_CONFIG"] = str(self._path("client"))
        env["DOCKER_BUILDKIT"] = "0"
        env["DOCKER_CLI_HINTS"] = "false"
        return env

    def docker(
        self,
        *args: str,
        input: bytes | str | None = None,
        check: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
        """Run ``docker -H <this daemon> *args`` with captured output.

        Output is text unless ``input`` is bytes (then stdin and output are bytes).
        The classic builder is used (``DOCKER_BUILDKIT=0``). Raises
        :class:`DockerCommandError` (with stderr) on a non-zero exit when ``check``.
        """
        cmd = [DOCKER, "-H", self.host, *args]
        res = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=not isinstance(input, bytes),
            env=self._client_env(),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            raise DockerCommandError(res.returncode, cmd, res.stdout, res.stderr)
        return res


class Registry:
    """Debian's ``docker-registry`` on ``127.0.0.1:<free port>`` with storage in a temp dir."""

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> None:
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.timeout = timeout
        self.workdir: Path | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the prefix of image references (``ADDR/repo:tag``)."""
        if self.port is None:
            raise DaemonError("registry not started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    def start(self) -> Registry:
        """Start the registry and wait until ``GET /v2/`` answers 200."""
        if self._proc is not None:
            raise DaemonError("registry already started")
        self.workdir = Path(tempfile.mkdtemp(prefix="rreg-", dir=self.base_dir)).resolve()
        self.port = _free_port()
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.workdir / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        log_path = self.workdir / "registry.log"
        with open(log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [REGISTRY, "serve", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=_clean_env(), start_new_session=True,
            )
        deadline = time.monotonic() + self.timeout
        while True:
            if self._proc.poll() is not None:
                msg = f"registry exited with {self._proc.returncode}"
                break
            try:
                with _OPENER.open(f"{self.url}/v2/", timeout=5) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                msg = f"registry did not answer within {self.timeout:.0f}s"
                break
            time.sleep(0.1)
        tail = _tail(log_path)
        self.stop()
        raise DaemonError(f"{msg}\n--- tail of registry log ---\n{tail}")

    def stop(self) -> None:
        """Stop the registry by pid and remove its temp dir."""
        if self._proc is not None:
            _terminate(self._proc, grace=10)
            self._proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.port = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def schema2_manifest(config_bytes: bytes, layer_blobs: Sequence[bytes]) -> bytes:
    """Return a Docker schema-2 manifest for these exact config and (gzip) layer blobs.

    Serialised like ``docker push`` does it (3-space indent, no trailing newline).
    """
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": _CONFIG_V1, "size": len(config_bytes), "digest": _digest(config_bytes)},
        "layers": [
            {"mediaType": _LAYER_GZIP, "size": len(b), "digest": _digest(b)} for b in layer_blobs
        ],
    }
    return json.dumps(manifest, indent=3).encode()


def _request(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """Send one HTTP request (no proxy); raise DaemonError with the body on HTTP errors."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        resp: http.client.HTTPResponse = _OPENER.open(req, timeout=60)
        return resp
    except urllib.error.HTTPError as exc:
        body = exc.read()[:2000].decode("utf-8", "replace")
        raise DaemonError(f"{method} {url} -> HTTP {exc.code}: {body}") from exc


def push_blobs_and_manifest(
    registry_url: str,
    repo: str,
    tag: str,
    config_bytes: bytes,
    layer_blobs: Sequence[bytes],
    manifest_bytes: bytes,
) -> str:
    """Upload exact blobs and manifest through the registry HTTP API v2.

    ``registry_url`` is ``http://127.0.0.1:PORT``. Each blob (config first, then
    layers) is uploaded with ``POST /v2/<repo>/blobs/uploads/`` and a monolithic
    ``PUT <location>?digest=sha256:…`` (skipped when ``HEAD`` finds it already);
    then the manifest is ``PUT`` to ``/v2/<repo>/manifests/<tag>`` as
    ``application/vnd.docker.distribution.manifest.v2+json``.

    Returns the manifest digest (``sha256:`` + sha256 of ``manifest_bytes``), which
    is what ``docker pull`` prints as ``Digest:`` and stores in repositories.json.
    """
    base = registry_url.rstrip("/")
    host = urllib.parse.urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"refusing non-loopback registry {registry_url!r}")
    for blob in [config_bytes, *layer_blobs]:
        digest = _digest(blob)
        try:
            with _OPENER.open(
                urllib.request.Request(f"{base}/v2/{repo}/blobs/{digest}", method="HEAD"), timeout=60
            ) as resp:
                if resp.status == 200:
                    continue
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise DaemonError(f"HEAD blob {digest} -> HTTP {exc.code}") from exc
        with _request("POST", f"{base}/v2/{repo}/blobs/uploads/", data=b"") as resp:
            location = resp.headers["Location"]
        location = urllib.parse.urljoin(base + "/", location)
        sep = "&" if "?" in location else "?"
        put_url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        with _request(
            "PUT", put_url, data=blob,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(blob))},
        ) as resp:
            if resp.status != 201:
                raise DaemonError(f"blob upload {digest}: HTTP {resp.status}")
    with _request(
        "PUT", f"{base}/v2/{repo}/manifests/{tag}", data=manifest_bytes,
        headers={"Content-Type": MANIFEST_V2},
    ) as resp:
        stored = resp.headers.get("Docker-Content-Digest", "")
    expected = _digest(manifest_bytes)
    if stored and stored != expected:
        raise DaemonError(f"registry stored manifest as {stored}, expected {expected}")
    return expected


@functools.cache
def available() -> str | None:
    """``None`` if a real dockerd can be started here, else the reason (for skips).

    Starts and stops one daemon the first time; the answer is cached.
    """
    if os.geteuid() != 0:
        return "not root"
    for name, binary in (("docker", DOCKER), ("dockerd", DOCKERD)):
        if not (os.path.isabs(binary) and os.access(binary, os.X_OK)) and not shutil.which(binary):
            return f"{name} not installed (apt-get install -y docker.io)"
    try:
        with Daemon(timeout=60):
            pass
    except (DaemonError, OSError, subprocess.SubprocessError) as exc:
        return f"dockerd does not start here: {exc}"
    return None


def require() -> str | None:
    """Like :func:`available`, but raise when ``CI`` is set and dockerd is missing.

    In a test: ``reason = require(); if reason: pytest.skip(reason)``. On CI
    (``CI`` set to anything but ``""``/``0``/``false``) a missing daemon must fail
    the run loudly instead of skipping.
    """
    reason = available()
    if reason and os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        raise DaemonError(f"CI is set but a real Docker daemon is not usable: {reason}")
    return reason


def _show_content(rel: tuple[str, ...], data: bytes) -> bool:
    """Whether tree_listing prints a file's bytes rather than its size.

    Rule inferred from the reference listing: bytes are shown for daemon
    metadata files up to 1024 bytes that are text (UTF-8, no NUL), never for
    files inside a layer's ``diff/``, ``work/`` or ``merged/``.
    """
    if len(rel) >= 3 and rel[0] == "overlay2" and rel[2] in ("diff", "work", "merged"):
        return False
    if len(data) > 1024 or b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def tree_listing(
    root: str | os.PathLike[str],
    include: Iterable[str] | None = ("containers", "image", "overlay2"),
    show_link_dir: bool = False,
) -> list[str]:
    """List a data root like ``reference/docker-20.10-pull/tree-listing.txt``.

    One line per entry, walked top-down: a directory's line, then its
    non-directories sorted by name, then each sub-directory (sorted) recursively.
    Symlinks are never followed. Line formats (``MODE`` = ``stat.filemode``,
    ``PERM`` = permission bits in octal, right-aligned in 4 columns)::

        MODE PERM ./dir
        MODE PERM ./file  = b'<bytes>'        (small text metadata, see below)
        MODE PERM ./file  (N bytes)
        MODE PERM ./link -> target
        MODE PERM ./dev (char MAJ:MIN)

    Bytes are shown for text files of at most 1024 bytes outside layer contents
    (``overlay2/<id>/{diff,work,merged}``); everything else shows its size.

    Args:
        root: the data root.
        include: top-level names to descend into (the reference shows
            containers, image and overlay2 only); ``None`` for everything.
        show_link_dir: list the symlinks inside ``overlay2/l/`` (the reference
            does not).
    """
    base = Path(root)
    wanted = None if include is None else set(include)
    out: list[str] = []

    def head(st: os.stat_result, rel: tuple[str, ...]) -> str:
        name = "./" + "/".join(rel) if rel else "."
        return f"{stat.filemode(st.st_mode)} {stat.S_IMODE(st.st_mode):4o} {name}"

    def walk(path: Path, rel: tuple[str, ...]) -> None:
        out.append(head(os.lstat(path), rel))
        leaves: list[tuple[str, os.stat_result]] = []
        dirs: list[str] = []
        for name in os.listdir(path):
            st = os.lstat(path / name)
            if stat.S_ISDIR(st.st_mode):
                dirs.append(name)
            else:
                leaves.append((name, st))
        if not rel and wanted is not None:
            leaves = [x for x in leaves if x[0] in wanted]
            dirs = [d for d in dirs if d in wanted]
        if rel == ("overlay2", "l") and not show_link_dir:
            leaves = []
        for name, st in sorted(leaves):
            sub = (*rel, name)
            line = head(st, sub)
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                line += f" -> {os.readlink(path / name)}"
            elif stat.S_ISCHR(mode):
                line += f" (char {os.major(st.st_rdev)}:{os.minor(st.st_rdev)})"
            elif stat.S_ISBLK(mode):
                line += f" (block {os.major(st.st_rdev)}:{os.minor(st.st_rdev)})"
            elif stat.S_ISREG(mode):
                data = (path / name).read_bytes() if st.st_size <= 1024 else b"\0"
                if _show_content(sub, data):
                    line += f"  = {data!r}"
                else:
                    line += f"  ({st.st_size} bytes)"
            out.append(line)
        for name in sorted(dirs):
            walk(path / name, (*rel, name))

    walk(base, ())
    return out
