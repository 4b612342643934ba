"""What the conformance session does to its one daemon, and what it keeps for the tests.

Shared by ``conftest.py`` (the fixtures) and the test modules, which import the constants and
records from here rather than from ``conftest`` (two ``conftest`` modules exist in ``tests/``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import realdocker
from compare import layer_dirs, layerdb_files, store
from dockerlab.export import export_image, pull_log
from fakeroot_builder.plan import CANONICAL_SEED, Plan

__all__ = ["CATALOGUE", "PULLED", "SEED", "Created", "Loaded", "PullSnapshot", "capture", "push_and_pull"]

SEED = CANONICAL_SEED
#: Images pushed to the registry and pulled, in this order (the builder's pull order too).
PULLED = ("nginx:latest", "nginx:alpine", "redis:7", "busybox:latest")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _catalogue_names() -> list[str]:
    """Every image of the builder's catalogue, in catalogue order."""
    from fakeroot_builder.catalogue import IMAGES

    return [recipe.name for recipe in IMAGES]


CATALOGUE = _catalogue_names()


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


def store_files(root: Path) -> dict[str, bytes]:
    """repositories.json, distribution/… and imagedb/metadata/… by path under image/overlay2."""
    base = store(root)
    files = {"repositories.json": (base / "repositories.json").read_bytes()}
    for path in sorted((base / "distribution").rglob("*")):
        if path.is_file():
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    for path in sorted((base / "imagedb" / "metadata").rglob("*")):
        if path.is_file():
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


def dockerlab_inspect_json(root: Path, ref: str) -> dict[str, Any]:
    """``python -m fakeroot_builder inspect REF --root ROOT --json``."""
    res = subprocess.run(
        [sys.executable, "-m", "fakeroot_builder", "inspect", ref, "--root", str(root), "--json", "--impl", "solutions"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )
    assert res.returncode == 0, f"dockerlab inspect {ref} failed:\n{res.stderr}"
    return dict(json.loads(res.stdout))


def push_and_pull(daemon: realdocker.Daemon, registry: realdocker.Registry, plan: Plan, snap: PullSnapshot) -> None:
    """Push the plan's exact blobs, configs and manifests, then pull (and tag) in plan order."""
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


def capture(daemon: realdocker.Daemon, snap: PullSnapshot, out: Path) -> None:
    """Record the daemon's root after the pulls, and run our reader and exporter on it."""
    root = daemon.data_root
    snap.tree = realdocker.tree_listing(root)
    snap.layers = layer_dirs(root)
    snap.files = store_files(root)
    snap.layerdb = {db: layerdb_files(root, db) for db in snap.layers}
    for name in PULLED:
        ref = snap.real_ref(name)
        snap.inspect[name] = json.loads(str(daemon.docker("image", "inspect", ref).stdout))[0]
        snap.dockerlab_inspect[name] = dockerlab_inspect_json(root, ref)
        ours = export_image(root, ref, out / f"ours-{name.replace(':', '_')}.tar")
        theirs = out / f"real-{name.replace(':', '_')}.tar"
        daemon.docker("save", "-o", str(theirs), ref)
        snap.saved_equal[name] = (_sha(theirs), _sha(ours))
        snap.pull_logs[name] = pull_log(root, ref, progress=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """One image exported by us and loaded by the daemon."""

    name: str
    archive: Path
    stdout: str


@dataclass(frozen=True)
class Created:
    """A container the daemon created, paired with the builder's container of the same recipe."""

    ours_id: str
    real_id: str
    real_name: str


