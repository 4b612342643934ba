"""pytest fixtures for code that reads Docker roots: a fake ``/var/lib/docker`` in one line.

Registered through the ``pytest11`` entry point, so any test of a project that installs
dockerlab can ask for them:

    def test_my_reader_finds_nginx(docker_root):
        assert my_reader(docker_root.path).image("nginx")

``docker_root`` builds the canonical root at ``/var/lib/docker`` inside pyfakefs's ``fs``; the
plan (all the hashing) is made before ``fs`` starts and reused across tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from .cache import BuiltRoot

__all__ = ["docker_root", "docker_root_factory"]

DATA_ROOT = "/var/lib/docker"


@lru_cache(maxsize=8)
def _plan(seed: int, host_seed: int | None, images: tuple[str, ...] | None, containers: bool) -> Any:
    from .build import plan_root

    return plan_root(seed=seed, host_seed=host_seed, images=images, containers=containers)


def _write(plan: Any, target: str) -> BuiltRoot:
    import os

    from .writer import write_plan

    os.makedirs(os.path.dirname(target), exist_ok=True)
    notes = write_plan(plan, target)
    return BuiltRoot(Path(target), plan.truth(notes))


@pytest.fixture
def docker_root_factory(fs: Any) -> Any:
    """``make(seed=…, images=[…], host_seed=…, containers=True, path=DATA_ROOT)`` inside pyfakefs."""

    def make(
        seed: int = 2023,
        images: list[str] | None = None,
        host_seed: int | None = None,
        containers: bool = True,
        path: str = DATA_ROOT,
    ) -> BuiltRoot:
        # Faker and the plan are made with the real file system paused (fs.pause) so that
        # Faker's lazy imports read real files.
        fs.pause()
        try:
            plan = _plan(seed, host_seed, tuple(images) if images else None, containers)
        finally:
            fs.resume()
        return _write(plan, path)

    return make


@pytest.fixture
def docker_root(docker_root_factory: Any) -> Iterator[BuiltRoot]:
    """The canonical fake root at ``/var/lib/docker`` in pyfakefs (``.path``, ``.truth``)."""
    yield docker_root_factory()
