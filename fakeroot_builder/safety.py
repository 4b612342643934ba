"""Where the builder refuses to write: never over data, never into a live Docker or containerd root.

``dockerlab build`` writes into a temporary sibling of the target and renames it into place
at the end, so an interrupted build leaves nothing half-made and an existing tree is only
replaced (with ``--force``) once the new one is complete.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (Ubuntu 22.04): the tomli backport, a dependency there
    import tomli as tomllib

from .errors import LiveDockerRootError, TargetNotEmptyError
from .formats import OTHER_ROOT_DIRS
from .trees import remove_tree

__all__ = ["check_target", "clean", "looks_built", "remove_tree", "running_daemon_roots", "write_atomically"]

T = TypeVar("T")

_SYSTEM_ROOTS = (
    "/var/lib/docker",
    "/var/snap/docker/common/var-lib-docker",
    "/var/lib/containerd",  # Docker 29's images (containerd image store)
    "/run/containerd",
    "~/.local/share/containerd",  # rootless containerd (nerdctl, rootless Docker)
)
#: Files a real daemon keeps in its root and the builder never writes.
_DAEMON_MARKERS = ("engine-id", "network/files/local-kv.db", "volumes/metadata.db", "buildkit/cache.db")
#: Where a real containerd keeps the tasks it runs (the builder leaves these directories empty).
_CONTAINERD_TASKS = ("io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux")


def _option(argv: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last ``--name value`` or ``--name=value`` in ``argv``."""
    value = None
    for i, text in enumerate(argv):
        if text in names and i + 1 < len(argv):
            value = argv[i + 1]
        elif "=" in text and text.split("=", 1)[0] in names:
            value = text.split("=", 1)[1]
    return value


def _containerd_root(argv: list[str], cwd: str) -> str:
    """A containerd's root: ``--root``, else its config file's ``root``, else the default.

    Relative paths are taken from the process's working directory ``cwd``.
    """
    root = _option(argv, ("--root",))
    if root:
        return os.path.join(cwd, root)
    config = os.path.join(cwd, _option(argv, ("--config", "-c")) or "/etc/containerd/config.toml")
    try:
        with open(config, "rb") as fh:
            return os.path.join(cwd, str(tomllib.load(fh).get("root") or "/var/lib/containerd"))
    except (OSError, ValueError, ImportError):
        return "/var/lib/containerd"


def running_daemon_roots() -> list[Path]:
    """Data roots of the dockerd and containerd processes running on this machine (from /proc)."""
    roots = []
    proc = Path("/proc")
    if not proc.is_dir():
        return roots
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        program = os.path.basename(argv[0]) if argv else ""
        if program not in ("containerd",) and not program.startswith("dockerd"):
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = "/"
        if program.startswith("dockerd"):
            root = _option(argv, ("--data-root", "-g", "--graph")) or "/var/lib/docker"
            roots.append(Path(os.path.join(cwd, root)).resolve())
        else:
            roots.append(Path(_containerd_root(argv, cwd)).resolve())
    return roots


def _related(a: Path, b: Path) -> bool:
    """``a`` is ``b``, inside it, or holds it."""
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _protected_roots() -> list[Path]:
    return [Path(p).expanduser().resolve() for p in _SYSTEM_ROOTS] + running_daemon_roots()


def _running_tasks(path: Path) -> str | None:
    """A task directory a real containerd left in ``path`` (the builder writes none), if any."""
    for runtime in _CONTAINERD_TASKS:
        top = path / runtime
        try:
            for ns in top.iterdir():
                if not ns.is_dir() or any(ns.iterdir()):
                    return f"{runtime}/{ns.name}"
        except OSError:
            continue
    return None


def looks_built(path: Path) -> bool:
    """Whether ``path`` holds nothing but what ``dockerlab build`` writes at the top of a root
    (either store)."""
    from .containerd_store import ROOT_NAMES

    classic = {"containers", "image", "overlay2"} | {name for name, _ in OTHER_ROOT_DIRS}
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    if "image" in names and names <= classic:
        return not any((path / marker).exists() for marker in _DAEMON_MARKERS)
    if "io.containerd.metadata.v1.bolt" in names and names <= ROOT_NAMES:
        return _running_tasks(path) is None
    return False


def check_target(target: Path, force: bool) -> None:
    """Raise unless ``target`` may receive a new root.

    Never a real Docker root, or a directory inside or above one; ``force`` replaces only a
    root an earlier ``dockerlab build`` wrote, never other data.
    """
    resolved = target.resolve()
    for live in _protected_roots():
        if _related(resolved, live):
            raise LiveDockerRootError(
                f"{target}: refusing to write in or around {live}, a real Docker data root or containerd root"
            )
    for marker in _DAEMON_MARKERS:
        if (resolved / marker).exists():
            raise LiveDockerRootError(f"{target}: holds {marker}, which only a real Docker daemon writes")
    tasks = _running_tasks(resolved)
    if tasks is not None:
        raise LiveDockerRootError(f"{target}: holds {tasks}, the tasks of a real containerd")
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
            raise LiveDockerRootError(f"{target}: refusing to remove in or around {live}, a real Docker data root or containerd root")
    if not (looks_built(resolved) or _left_by_rm(resolved)):
        raise TargetNotEmptyError(f"{target}: not a root made by `dockerlab build`; not removing it")
    remove_tree(resolved)


def _left_by_rm(path: Path) -> bool:
    """What ``rm -rf`` leaves of a built root as an ordinary user: the layer directories down to
    their mode-0000 ``work/work`` (so ``dockerlab clean`` still finishes the job), nothing else."""
    from .formats import MOUNT_ID_RE

    classic = {"containers", "image", "overlay2"} | {name for name, _ in OTHER_ROOT_DIRS}
    try:
        names = {p.name for p in path.iterdir()}
        layers = [p for p in (path / "overlay2").iterdir() if p.name != "l"]
        inside = {q.name for p in layers for q in p.iterdir()}
    except OSError:
        return False
    if not ("overlay2" in names and names <= classic) or any((path / m).exists() for m in _DAEMON_MARKERS):
        return False
    return all(MOUNT_ID_RE.match(p.name) and p.is_dir() and not p.is_symlink() for p in layers) and inside <= {
        "diff", "link", "lower", "work", "committed"}
