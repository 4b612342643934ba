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

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import realdocker
from compare import layer_dirs, store
from dockerlab.export import export_image, pull_log
from fakeroot_builder.build import plan_root
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.plan import CANONICAL_SEED, Plan
from fakeroot_builder.writer import write_plan

SEED = CANONICAL_SEED
#: Images pushed to the registry and pulled, in this order (the builder's pull order too).
PULLED = ("nginx:latest", "nginx:alpine", "redis:7", "busybox:latest")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _catalogue_names() -> list[str]:
    """Every catalogue image; waits while a colleague is still writing the catalogue."""
    for _ in range(10):
        try:
            from fakeroot_builder.catalogue import IMAGES

            return [recipe.name for recipe in IMAGES]
        except ImportError:
            time.sleep(60)
    from fakeroot_builder.catalogue import IMAGES

    return [recipe.name for recipe in IMAGES]


CATALOGUE = _catalogue_names()


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


@dataclass
class PullSnapshot:
    """What the daemon looked like right after pulling :data:`PULLED`."""

    address: str  #: ``127.0.0.1:PORT`` of the registry
    pushed_digests: dict[str, str]
    transcripts: dict[str, str]
    tree: list[str]
    layers: dict[str, tuple[str, str]]  #: db id → (cache-id, link)
    files: dict[str, bytes]  #: repositories.json and distribution/… by path under image/overlay2
    inspect: dict[str, dict[str, Any]]
    dockerlab_inspect: dict[str, dict[str, Any]]
    layerdb: dict[str, dict[str, bytes]]  #: db id → files of its layerdb entry
    saved_equal: dict[str, tuple[str, str]] = field(default_factory=dict)  #: sha256 of docker save, of our export
    pull_logs: dict[str, str] = field(default_factory=dict)  #: our pull_log --progress on the real root

    def real_ref(self, name: str) -> str:
        """Where ``name`` lives in the local registry (``library/`` kept, like Docker Hub)."""
        return f"{self.address}/library/{name}"


def _store_files(root: Path) -> dict[str, bytes]:
    base = store(root)
    files = {"repositories.json": (base / "repositories.json").read_bytes()}
    for path in sorted((base / "distribution").rglob("*")):
        if path.is_file():
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    for path in sorted((base / "imagedb" / "metadata").rglob("*")):
        if path.is_file():
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


def _dockerlab_inspect(root: Path, ref: str) -> dict[str, Any]:
    """``python -m fakeroot_builder inspect REF --root ROOT --json``."""
    res = subprocess.run(
        [sys.executable, "-m", "fakeroot_builder", "inspect", ref, "--root", str(root), "--json", "--impl", "solutions"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert res.returncode == 0, f"dockerlab inspect {ref} failed:\n{res.stderr}"
    return dict(json.loads(res.stdout))


def _push_and_pull(daemon: realdocker.Daemon, registry: realdocker.Registry, plan: Plan, snap: PullSnapshot) -> None:
    for ip in plan.images:
        repo, tag = ip.recipe.name.split(":")
        assert ip.manifest_bytes is not None
        snap.pushed_digests[ip.recipe.name] = realdocker.push_blobs_and_manifest(
            registry.url, f"library/{repo}", tag, ip.config_bytes, [lp.layer.blob for lp in ip.layers], ip.manifest_bytes
        )
    for ip in plan.images:
        ref = snap.real_ref(ip.recipe.name)
        snap.transcripts[ip.recipe.name] = str(daemon.docker("pull", ref).stdout)
        for extra in ip.recipe.all_tags[1:]:  # what the builder's host did with `docker tag`
            daemon.docker("tag", ref, snap.real_ref(extra))


def _capture(daemon: realdocker.Daemon, snap: PullSnapshot, out: Path) -> None:
    root = daemon.data_root
    snap.tree = realdocker.tree_listing(root)
    snap.layers = layer_dirs(root)
    snap.files = _store_files(root)
    snap.layerdb = {db: {} for db in snap.layers}
    for db in snap.layers:
        entry = store(root) / "layerdb" / "sha256" / db[7:]
        snap.layerdb[db] = {p.name: p.read_bytes() for p in entry.iterdir()}
    for name in PULLED:
        ref = snap.real_ref(name)
        snap.inspect[name] = json.loads(str(daemon.docker("image", "inspect", ref).stdout))[0]
        snap.dockerlab_inspect[name] = _dockerlab_inspect(root, ref)
        ours = export_image(root, ref, out / f"ours-{name.replace(':', '_')}.tar")
        theirs = out / f"real-{name.replace(':', '_')}.tar"
        daemon.docker("save", "-o", str(theirs), ref)
        snap.saved_equal[name] = (_sha(theirs), _sha(ours))
        snap.pull_logs[name] = pull_log(root, ref, progress=True)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def pulled(
    daemon: realdocker.Daemon, registry: realdocker.Registry, pulled_plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> PullSnapshot:
    """Push and pull :data:`PULLED` into the fresh daemon, capture it, then remove the images."""
    assert not (store(daemon.data_root) / "layerdb" / "sha256").exists(), "the daemon is not fresh"
    snap = PullSnapshot(registry.address, {}, {}, [], {}, {}, {}, {}, {})
    _push_and_pull(daemon, registry, pulled_plan, snap)
    _capture(daemon, snap, tmp_path_factory.mktemp("pulled"))
    ids = sorted({info["Id"] for info in snap.inspect.values()})
    daemon.docker("rmi", "-f", *ids)
    return snap


# -- phase 2: loads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """One image exported by us and loaded by the daemon."""

    name: str
    archive: Path
    stdout: str


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


@dataclass(frozen=True)
class Created:
    """A container the daemon created, paired with the builder's container of the same recipe."""

    ours_id: str
    real_id: str
    real_name: str


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
