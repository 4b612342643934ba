"""Session fixtures of the conformance suite: ONE real dockerd and ONE registry for all tests.

Order of what happens to the daemon (fixture dependencies enforce it):

1. ``pulled``: our own blobs, configs and manifests for :data:`PULLED` are pushed to the
   registry and ``docker pull``-ed into the still empty daemon; everything the pull tests
   compare is captured then (a :class:`PullSnapshot`), and the pulled images are removed.
2. ``loaded``: every catalogue image is exported from the builder's root with
   ``dockerlab export`` and ``docker load``-ed.
3. ``created``: ``docker create`` for the builder's created containers.

``realdocker.require()`` skips everything when no daemon can run here, and fails when ``CI``
is set. Both processes are stopped by pid at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import realdocker
from compare import store
from dockerlab.export import export_image
from fakeroot_builder.build import plan_root
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.plan import Plan
from fakeroot_builder.writer import write_plan
from phases import CATALOGUE, PULLED, SEED, Created, Loaded, PullSnapshot, capture, push_and_pull

# -- processes -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_ok() -> None:
    """Skip (or fail on CI) when a real daemon cannot run here."""
    reason = realdocker.require()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def daemon(docker_ok: None) -> Iterator[realdocker.Daemon]:
    """The one dockerd of the session."""
    with realdocker.Daemon() as d:
        yield d


@pytest.fixture(scope="session")
def registry(docker_ok: None) -> Iterator[realdocker.Registry]:
    """The one registry of the session (127.0.0.1 only)."""
    with realdocker.Registry() as reg:
        yield reg


# -- the builder's side ----------------------------------------------------------------------------


def _write(plan: Plan, target: Path) -> BuiltRoot:
    """Write ``plan`` (the same in-memory plan the tests read layer bytes from) to ``target``."""
    notes = write_plan(plan, target)
    return BuiltRoot(target, plan.truth(notes))


@pytest.fixture(scope="session")
def built_plan() -> Plan:
    """The builder's plan of the full root (every image, containers) for :data:`SEED`."""
    return plan_root(seed=SEED)


@pytest.fixture(scope="session")
def built(built_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> BuiltRoot:
    """:func:`built_plan` on disk. Built here, not taken from the cache, so that root and plan
    come from the same builder code even while someone edits the builder."""
    return _write(built_plan, tmp_path_factory.mktemp("built") / "root")


@pytest.fixture(scope="session")
def pulled_plan() -> Plan:
    """A root holding only :data:`PULLED`, as if pulled on a fresh host (no containers)."""
    return plan_root(seed=SEED, images=list(PULLED), containers=False)


@pytest.fixture(scope="session")
def built_pulled(pulled_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> BuiltRoot:
    """:func:`pulled_plan` on disk."""
    return _write(pulled_plan, tmp_path_factory.mktemp("built-pulled") / "root")


# -- phase 1: pulls --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pulled(
    daemon: realdocker.Daemon, registry: realdocker.Registry, pulled_plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> PullSnapshot:
    """Push and pull :data:`PULLED` into the fresh daemon, capture it, then remove the images."""
    assert not (store(daemon.data_root) / "layerdb" / "sha256").exists(), "the daemon is not fresh"
    snap = PullSnapshot(registry.address, {}, {}, [], {}, {}, {}, {}, {})
    push_and_pull(daemon, registry, pulled_plan, snap)
    capture(daemon, snap, tmp_path_factory.mktemp("pulled"))
    ids = sorted({info["Id"] for info in snap.inspect.values()})
    daemon.docker("rmi", "-f", *ids)
    return snap


# -- phase 2: loads --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def loaded(
    daemon: realdocker.Daemon, pulled: PullSnapshot, built: BuiltRoot, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Loaded]:
    """Every catalogue image: ``dockerlab export`` from the builder's root, then ``docker load``."""
    assert not any((store(daemon.data_root) / "layerdb" / "sha256").iterdir()), "pulled layers were not removed"
    out = tmp_path_factory.mktemp("exports")
    result: dict[str, Loaded] = {}
    for name in CATALOGUE:
        archive = export_image(built.path, name, out / f"{name.replace(':', '_').replace('/', '_')}.tar")
        stdout = str(daemon.docker("load", "-i", str(archive)).stdout)
        result[name] = Loaded(name, archive, stdout)
    return result


# -- phase 3: containers ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def created(daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot) -> list[Created]:
    """``docker create`` (same image, same command) for each created container of the builder."""
    from fakeroot_builder.catalogue import CONTAINERS

    out: list[Created] = []
    recipes = [r for r in CONTAINERS if r.state == "created"]
    ours = [c for c in built.truth.containers if c.state == "created"]
    for recipe, mine in zip(recipes, ours):
        assert mine.image == recipe.image
        name = f"conformance-{len(out)}"
        args = ["create", "--name", name, recipe.image, *(recipe.cmd or ())]
        real_id = str(daemon.docker(*args).stdout).strip()
        out.append(Created(mine.id, real_id, name))
    return out


def pytest_report_header(config: pytest.Config) -> str:
    return f"conformance: dockerd {realdocker.DOCKERD}, client {realdocker.DOCKER}, seed {SEED}, CI={os.environ.get('CI', '')!r}"
