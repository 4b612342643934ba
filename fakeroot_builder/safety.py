"""Where the builder refuses to write: never over data, never into a live Docker root.

``dockerlab build`` writes into a temporary sibling of the target and renames it into place
at the end, so an interrupted build leaves nothing half-made and an existing tree is only
replaced (with ``--force``) once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import LiveDockerRootError, TargetNotEmptyError

__all__ = ["check_target", "running_daemon_roots", "write_atomically"]

T = TypeVar("T")

_SYSTEM_ROOTS = ("/var/lib/docker", "/var/snap/docker/common/var-lib-docker")
#: Files a real daemon keeps in its root and the builder never writes.
_DAEMON_MARKERS = ("engine-id", "network/files/local-kv.db", "volumes/metadata.db", "buildkit/cache.db")


def running_daemon_roots() -> list[Path]:
    """Data roots of the dockerd processes running on this machine (from /proc)."""
    roots = []
    proc = Path("/proc")
    if not proc.is_dir():
        return roots
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not os.path.basename(argv[0].decode(errors="replace")).startswith("dockerd"):
            continue
        root = "/var/lib/docker"
        for i, arg in enumerate(argv):
            text = arg.decode(errors="replace")
            if text in ("--data-root", "-g", "--graph") and i + 1 < len(argv):
                root = argv[i + 1].decode(errors="replace")
            elif text.startswith("--data-root="):
                root = text.split("=", 1)[1]
        roots.append(Path(root).resolve())
    return roots


def check_target(target: Path, force: bool) -> None:
    """Raise unless ``target`` may receive a new root (``force`` allows replacing a non-empty one)."""
    resolved = target.resolve()
    for system in _SYSTEM_ROOTS:
        if resolved == Path(system).resolve():
            raise LiveDockerRootError(f"{target}: refusing to write into {system}, a real Docker data root")
    if resolved in running_daemon_roots():
        raise LiveDockerRootError(f"{target}: a running dockerd uses this directory as its data root")
    for marker in _DAEMON_MARKERS:
        if (resolved / marker).exists():
            raise LiveDockerRootError(f"{target}: holds {marker}, which only a real Docker daemon writes")
    if resolved.exists() and not resolved.is_dir():
        raise TargetNotEmptyError(f"{target}: exists and is not a directory")
    if resolved.is_dir() and any(resolved.iterdir()) and not force:
        raise TargetNotEmptyError(f"{target}: directory is not empty (use --force to replace it)")
    if not resolved.parent.is_dir():
        raise TargetNotEmptyError(f"{target}: parent directory {resolved.parent} does not exist")


def write_atomically(target: Path, write: Callable[[Path], T]) -> T:
    """Call ``write(staging)`` for a fresh path beside ``target``, then move it into place."""
    parent = target.resolve().parent
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=parent))
    staging = staging_dir / "root"
    try:
        result = write(staging)
        old = None
        if target.exists():
            old = staging_dir / "old"
            os.rename(target, old)
        os.rename(staging, target)
    except BaseException:
        _remove(staging_dir)
        raise
    _remove(staging_dir)
    return result


def _remove(path: Path) -> None:
    """Remove a tree the builder made, including 0000 directories and read-only dirs."""
    def fix(func, p, _exc):  # type: ignore[no-untyped-def]
        os.chmod(p, 0o700)
        func(p)
    for top, dirs, _ in os.walk(path):
        for d in dirs:
            child = os.path.join(top, d)
            if not os.path.islink(child):  # never follow a link out of the tree
                os.chmod(child, 0o700)
    shutil.rmtree(path, onerror=fix)
