"""Built roots kept on disk between test runs, keyed by the builder's own source.

Building the default root takes a fraction of a second, but a test session asks for several;
a warm ``tox -e lab1`` should cost little more than starting pytest. A cached root is reused
only when the builder's code, the seeds and the selection are all the same, and is written
to a temporary sibling and renamed, so a killed run never leaves half a root behind.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .trees import copy_tree, remove_tree, reseal

#: Directories a daemon leaves with mode 0000 (a mounted layer's or snapshot's ``work/work``);
#: an ordinary user's copy opens them for a moment, and a cached root is resealed if a copy was
#: killed meanwhile.
_SEALED = ("overlay2/*/work/work", "io.containerd.snapshotter.v1.overlayfs/snapshots/*/work/work")
from .truth import RootTruth

__all__ = ["BuiltRoot", "cache_dir", "cached_root", "copy_root", "graded_root", "source_fingerprint", "GRADED_ROOTS"]


@dataclass(frozen=True)
class BuiltRoot:
    """A root on disk and the truth of what the builder wrote there."""

    path: Path
    truth: RootTruth

    def __str__(self) -> str:
        return str(self.path)


def cache_dir() -> Path:
    """``$DOCKERLAB_CACHE``, else ``$XDG_CACHE_HOME/dockerlab``, else ``~/.cache/dockerlab``."""
    if os.environ.get("DOCKERLAB_CACHE"):
        return Path(os.environ["DOCKERLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dockerlab"


@lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """A hash of the builder's source files: any change to the builder invalidates the cache."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_root(
    *,
    seed: int,
    host_seed: int | None = None,
    images: Sequence[str] | None = None,
    containers: bool = True,
    base: Path | None = None,
    store: str = "classic",
) -> BuiltRoot:
    """The root for these arguments, built once and then reused from the cache.

    ``store="containerd"`` gives the same catalogue as a Docker 29 containerd root.
    """
    key = f"{seed}|{host_seed}|{','.join(images or ['*'])}|{containers}"
    if store != "classic":
        key += f"|{store}"
    # The grader sets a per-run salt: a root's folder name then says nothing about its seed.
    name = hashlib.sha256((os.environ.get("DOCKERLAB_CACHE_SALT", "") + key).encode()).hexdigest()[:20]
    roots = (base or cache_dir()) / "roots"
    home = roots / source_fingerprint()
    final = home / name
    truth_file = final / "truth.json"
    if truth_file.exists():
        reseal(final / "root", _SEALED)
        return BuiltRoot(final / "root", RootTruth.from_json(truth_file.read_text()))
    from .build import build_root  # only on a miss: it imports Faker (~0.4 s), a hit needs none of it

    if not home.is_dir():
        _prune(roots)  # roots of an older builder can never be used again
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=home))
    try:
        truth = build_root(
            staging / "root", seed=seed, host_seed=host_seed, images=images, containers=containers, store=store
        )
        (staging / "truth.json").write_text(truth.to_json())
        try:
            os.rename(staging, final)
        except OSError:  # another process won the race: use its copy
            remove_tree(staging)
    except BaseException:
        remove_tree(staging)
        raise
    return BuiltRoot(final / "root", RootTruth.from_json(truth_file.read_text()))


#: Every kind of root the graded tests use, by name, as ``cached_root`` arguments for a seed.
#: The tests' fixtures and the grader (which builds them before any student code runs) both
#: read this table, so they cannot drift apart.
GRADED_ROOTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "full": lambda seed: {"seed": seed},
    # the same pull on a second host: the images lab 1 task 6 compares, no containers
    "other-host": lambda seed: {"seed": seed, "host_seed": seed + 1, "images": ["nginx:latest", "alpine:3.19"],
                                "containers": False},
    "other-content": lambda seed: {"seed": seed + 1, "images": ["nginx:latest"], "containers": False},
    "small": lambda seed: {"seed": seed, "images": ["nginx:latest", "nginx:alpine"], "containers": False},
    "small-with-containers": lambda seed: {"seed": seed, "images": ["nginx:latest", "alpine:3.19"]},
    "containerd": lambda seed: {"seed": seed, "store": "containerd"},  # lab 3: the full catalogue, Docker 29
}


#: The kind of root each graded tests' fixture gives (tests/conftest.py), by fixture name: read by
#: the grader (which kinds to build first) and by the tests (which copies to make first).
FIXTURE_KINDS: dict[str, str] = {"root": "full", "canonical": "full", "croot": "containerd", "small": "small",
                                 "small_with_containers": "small-with-containers"}


def graded_root(kind: str, seed: int, base: Path | None = None) -> BuiltRoot:
    """The root of kind ``kind`` (a key of :data:`GRADED_ROOTS`) for ``seed``."""
    return cached_root(**GRADED_ROOTS[kind](seed), base=base)


def _prune(roots: Path) -> None:
    if roots.is_dir():
        for old in roots.iterdir():
            remove_tree(old) if old.is_dir() else old.unlink()


def copy_root(source: BuiltRoot, target: Path) -> BuiltRoot:
    """A copy of ``source`` at ``target`` (whiteouts, links, modes and xattrs kept) to damage freely.

    Works as an ordinary user too: the mode-0000 ``work/work`` of mounted layers is copied with
    its content and mode (see :func:`fakeroot_builder.trees.copy_tree`).
    """
    copy_tree(source.path, target)
    return BuiltRoot(Path(target), source.truth)
