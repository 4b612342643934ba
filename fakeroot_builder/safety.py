"""Where the builder refuses to write: never over data, never into a live Docker root.

``dockerlab build`` writes into a temporary sibling of the target and renames it into place
at the end, so an interrupted build leaves nothing half-made and an existing tree is only
replaced (with ``--force``) once the new one is complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import LiveDockerRootError, TargetNotEmptyError
from .formats import OTHER_ROOT_DIRS
from .trees import remove_tree

__all__ = ["check_target", "clean", "looks_built", "remove_tree", "running_daemon_roots", "write_atomically"]

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


def _related(a: Path, b: Path) -> bool:
    """``a`` is ``b``, inside it, or holds it."""
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _protected_roots() -> list[Path]:
    return [Path(p).resolve() for p in _SYSTEM_ROOTS] + running_daemon_roots()


def looks_built(path: Path) -> bool:
    """Whether ``path`` holds nothing but what ``dockerlab build`` writes at the top of a root."""
    own = {"containers", "image", "overlay2"} | {name for name, _ in OTHER_ROOT_DIRS}
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    daemon_files = any((path / marker).exists() for marker in _DAEMON_MARKERS)
    return "image" in names and names <= own and not daemon_files


def check_target(target: Path, force: bool) -> None:
    """Raise unless ``target`` may receive a new root.

    Never a real Docker root, or a directory inside or above one; ``force`` replaces only a
    root an earlier ``dockerlab build`` wrote, never other data.
    """
    resolved = target.resolve()
    for live in _protected_roots():
        if _related(resolved, live):
            raise LiveDockerRootError(
                f"{target}: refusing to write in or around {live}, a real Docker data root"
            )
    for marker in _DAEMON_MARKERS:
        if (resolved / marker).exists():
            raise LiveDockerRootError(f"{target}: holds {marker}, which only a real Docker daemon writes")
    if resolved.exists() and not resolved.is_dir():
        raise TargetNotEmptyError(f"{target}: exists and is not a directory")
    if resolved.is_dir() and any(resolved.iterdir()):
        if not force:
            raise TargetNotEmptyError(f"{target}: directory is not empty (use --force to replace an earlier build)")
        if not looks_built(resolved):
            raise TargetNotEmptyError(
                f"{target}: --force replaces only a root made by `dockerlab build`, and this "
                "directory holds other things; choose an empty or new directory"
            )
    if not resolved.parent.is_dir():
        raise TargetNotEmptyError(f"{target}: parent directory {resolved.parent} does not exist")


def write_atomically(target: Path, write: Callable[[Path], T]) -> T:
    """Call ``write(staging)`` for a fresh path beside ``target``, then move it into place.

    An existing ``target`` is moved aside first and put back if the final rename fails, so it
    is lost only once the new tree is in place.
    """
    parent = target.resolve().parent
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=parent))
    staging = staging_dir / "root"
    old = staging_dir / "old"
    try:
        result = write(staging)
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            if old.exists():
                os.rename(old, target)
            raise
    finally:
        remove_tree(staging_dir)
    return result


def clean(target: Path) -> None:
    """Remove a root made by ``dockerlab build``; refuse anything else."""
    resolved = target.resolve()
    if not resolved.is_dir():
        raise TargetNotEmptyError(f"{target}: no such directory")
    for live in _protected_roots():
        if _related(resolved, live):
            raise LiveDockerRootError(f"{target}: refusing to remove in or around {live}, a real Docker data root")
    if not looks_built(resolved):
        raise TargetNotEmptyError(f"{target}: not a root made by `dockerlab build`; not removing it")
    remove_tree(resolved)
