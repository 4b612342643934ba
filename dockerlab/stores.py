"""Which image store a directory holds: Docker's classic one, or containerd's (Docker 29+).

The tools (``inspect``, ``export``, ``pull-log``…) take ``--root`` and work on either kind:

- ``classic``: a Docker data root with the overlay2 driver (``/var/lib/docker``: ``image/overlay2``);
- ``containerd``: a containerd root (``/var/lib/containerd``: ``io.containerd.metadata.v1.bolt``),
  where Docker 29 keeps images in the namespace ``moby``.

Without ``--root`` the tools look where a host keeps them: ``/var/lib/docker`` if it holds the
classic store, else ``/var/lib/containerd``. Both belong to root on a real host; a directory the
user may not read is a one-line error saying what to run with sudo, never a traceback.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from fakeroot_builder.errors import DockerLabError

__all__ = ["CLASSIC", "CONTAINERD", "DEFAULT_ROOTS", "Store", "find_store"]

CLASSIC = "classic"
CONTAINERD = "containerd"
#: Where a host keeps each store.
DEFAULT_ROOTS = {CLASSIC: "/var/lib/docker", CONTAINERD: "/var/lib/containerd"}
_MARKERS = {CLASSIC: os.path.join("image", "overlay2"), CONTAINERD: "io.containerd.metadata.v1.bolt"}


@dataclass(frozen=True)
class Store:
    """A root and the kind of image store found in it."""

    kind: str  #: ``classic`` or ``containerd``
    root: str

    def describe(self) -> str:
        """One line saying what was found, for the tools to print first."""
        if self.kind == CLASSIC:
            return f"{self.root}: classic Docker image store (overlay2, layer DB)"
        return f"{self.root}: containerd image store (Docker 29+, namespace moby, snapshotter overlayfs)"


def _sudo_hint(root: str, again: list[str]) -> str:
    """The error for a root only root may read, with the command to run instead."""
    args = list(again)
    if "--root" not in args:
        args += ["--root", root]
    return f"{root} is readable by root only: run `sudo $(command -v dockerlab) {shlex.join(args)}`"


def _kind(root: str) -> str | None:
    """The store in ``root``, None if neither; PermissionError if ``root`` may not be read."""
    if not os.path.isdir(root):
        return None
    if not os.access(root, os.X_OK):  # traversing is enough: the files inside have their own modes
        raise PermissionError(root)
    for kind, marker in _MARKERS.items():
        path = os.path.join(root, marker)
        if os.path.isdir(path):
            if not os.access(path, os.X_OK):
                raise PermissionError(path)
            return kind
    return None


def find_store(root: str | None, again: list[str] = ()) -> Store:  # type: ignore[assignment]
    """The store at ``root`` (or at the host's default places when None), or a clear error.

    ``again`` is the command (without ``dockerlab``) the error suggests running with sudo.
    """
    if root is None:
        denied = None
        for kind in (CLASSIC, CONTAINERD):
            try:
                if _kind(DEFAULT_ROOTS[kind]) == kind:
                    return Store(kind, DEFAULT_ROOTS[kind])
            except PermissionError:
                denied = denied or DEFAULT_ROOTS[kind]
        if denied:
            raise DockerLabError(_sudo_hint(denied, list(again)))
        raise DockerLabError(
            "no image store on this host (neither /var/lib/docker/image/overlay2 nor "
            "/var/lib/containerd): give --root, e.g. a tree from `dockerlab build --out DIR`"
        )
    root = os.path.abspath(os.path.expanduser(root))
    try:
        kind = _kind(root)
    except PermissionError:
        raise DockerLabError(_sudo_hint(root, list(again))) from None
    if kind is not None:
        return Store(kind, root)
    if not os.path.isdir(root):
        raise DockerLabError(f"{root}: no such directory")
    hint = ""
    if os.path.isdir(os.path.join(root, "containers")) or os.path.isdir(os.path.join(root, "containerd")):
        # a Docker 29 data root: images are in containerd, not here
        daemon = os.path.join(root, "containerd", "daemon")
        where = daemon if os.path.isdir(os.path.join(daemon, _MARKERS[CONTAINERD])) else DEFAULT_ROOTS[CONTAINERD]
        hint = f"; with Docker 29's containerd image store the images are in {where}: use --root {where}"
    raise DockerLabError(
        f"{root}: not an image store (no image/overlay2/ of the classic store, "
        f"no io.containerd.metadata.v1.bolt/ of containerd){hint}"
    )
