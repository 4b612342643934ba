"""pytest fixtures for code that reads Docker roots: a fake ``/var/lib/docker`` in one line.

Registered through the ``pytest11`` entry point, so any test of a project that installs
dockerlab can ask for them:

    def test_my_reader_finds_nginx(docker_root):
        assert my_reader(docker_root.path).image("nginx")

``docker_root`` builds the canonical root at ``/var/lib/docker`` inside pyfakefs's ``fs``; the
plan (all the hashing) is made before ``fs`` starts and reused across tests. Inside the fake
file system the test acts as root (pyfakefs's ``set_uid(0)``), as the daemon that owns a real
``/var/lib/docker`` does, so the tree is the same whoever runs the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
import os
from pathlib import Path
from typing import Any

import pytest

from .cache import BuiltRoot

__all__ = ["containerd_root", "docker_root", "docker_root_factory"]

DATA_ROOT = "/var/lib/docker"
#: Where Docker 29 keeps images (the containerd image store): ``store="containerd"`` roots go here.
CONTAINERD_ROOT = "/var/lib/containerd"


@lru_cache(maxsize=8)
def _plan(seed: int, host_seed: int | None, images: tuple[str, ...] | None, containers: bool) -> Any:
    from .build import plan_root

    return plan_root(seed=seed, host_seed=host_seed, images=images, containers=containers)


def _write(plan: Any, target: str, store: str = "classic") -> BuiltRoot:
    from .build import write_store

    os.makedirs(os.path.dirname(target), exist_ok=True)
    return BuiltRoot(Path(target), write_store(plan, target, store))


#: Trees already written into some test's pyfakefs, by build arguments: (file system, node).
_SNAPSHOTS: dict[tuple[Any, ...], tuple[Any, Any, BuiltRoot]] = {}


def _clone_into(fs: Any, snapshot: tuple[Any, Any, BuiltRoot], path: str) -> BuiltRoot:
    """Graft a copy of a tree another test's file system already holds (no file operations).

    Writing ~2,000 entries through pyfakefs costs about a second; copying its node objects costs
    a few milliseconds. The copy is deep (tests may change it), its nodes point at this test's
    file system, and new inode numbers are drawn above the grafted ones. pyfakefs is pinned,
    and tests/test_pyfakefs.py checks the copy against a real-directory build.
    """
    import copy
    import weakref

    old_fs, node, built = snapshot
    clone = copy.deepcopy(node, memo={id(old_fs): fs})
    stack = [clone]
    top_ino = clone.st_ino or 0
    while stack:  # deepcopy keeps parent weakrefs to the old tree: point them at the copy
        parent = stack.pop()
        for child in getattr(parent, "_entries", {}).values():
            child.parent_dir = weakref.ref(parent)
            top_ino = max(top_ino, child.st_ino or 0)
            stack.append(child)
    where = os.path.dirname(path)
    parent_dir = fs.get_object(where) if fs.exists(where) else fs.create_dir(where)
    clone.name = os.path.basename(path)
    clone.st_nlink -= 1  # add_entry counts the new link again
    parent_dir.add_entry(clone)
    fs.last_ino = max(fs.last_ino, top_ino)
    return BuiltRoot(Path(path), built.truth)


@pytest.fixture
def docker_root_factory(fs: Any) -> Any:
    """``make(seed=…, images=[…], host_seed=…, containers=True, path=DATA_ROOT, store="classic")``
    inside pyfakefs (``store="containerd"``: a Docker 29 containerd root, at /var/lib/containerd
    unless ``path`` says otherwise).

    The first tree for given arguments is written with ordinary file operations; later tests
    get a copy of it grafted into their own file system.
    """

    def make(
        seed: int = 2023,
        images: list[str] | None = None,
        host_seed: int | None = None,
        containers: bool = True,
        path: str | None = None,
        store: str = "classic",
    ) -> BuiltRoot:
        _as_root()
        if path is None:
            path = CONTAINERD_ROOT if store == "containerd" else DATA_ROOT
        key = (seed, host_seed, tuple(images) if images else None, containers)
        if key + (store,) in _SNAPSHOTS:
            return _clone_into(fs, _SNAPSHOTS[key + (store,)], path)
        # Faker and the plan are made with the real file system paused (fs.pause) so that
        # Faker's lazy imports read real files.
        fs.pause()
        try:
            plan = _plan(*key)
            from . import build, writer  # noqa: F401  (imported for real, not under pyfakefs)

            if store == "containerd":
                from . import bbolt, containerd_store  # noqa: F401
        finally:
            fs.resume()
        built = _write(plan, path, store)
        _SNAPSHOTS[key + (store,)] = (fs, copy_of(fs.get_object(path), fs), built)
        return built

    return make


def _as_root() -> None:
    """Act as root inside the fake file system for the rest of the test (pyfakefs puts the ids
    back when it stops): a daemon's root is written by root, with 0/0 devices, ``trusted.``
    xattrs and the layers' owners, whoever runs the tests; and only root reads all of it."""
    from pyfakefs.helpers import set_gid, set_uid

    set_uid(0)
    set_gid(0)


def copy_of(node: Any, fs: Any) -> Any:
    """A private deep copy of ``node`` (the test that wrote it may change its own tree)."""
    import copy

    return copy.deepcopy(node, memo={id(fs): fs})


@pytest.fixture
def docker_root(docker_root_factory: Any) -> Iterator[BuiltRoot]:
    """The canonical fake root at ``/var/lib/docker`` in pyfakefs (``.path``, ``.truth``)."""
    yield docker_root_factory()


@pytest.fixture
def containerd_root(docker_root_factory: Any) -> Iterator[BuiltRoot]:
    """The canonical catalogue as Docker 29's containerd root at ``/var/lib/containerd`` in pyfakefs."""
    yield docker_root_factory(store="containerd")
