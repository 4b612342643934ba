"""Session fixtures of the containerd conformance suite: real containerd 1.6 and 2.x against our roots.

Every test runs once per containerd version (``version`` is a session parameter). Each version
gets its own daemons, roots, state dirs and sockets under /tmp, and every daemon is stopped (by
pid) and unmounted before the next one starts:

- ``imported``: an EMPTY containerd, then ``ctr -n moby images import`` of the ``dockerlab
  export`` archive of every catalogue image (built with the classic builder from one plan);
  what ``ctr`` lists and both databases (read with our bbolt reader) are captured.
- ``ours`` (test_our_root.py): containerd started on a copy of the containerd root the
  builder writes from the same plan (``dockerlab build --store containerd``).

``realcontainerd.require()`` skips everything when containerd cannot run here (not root, no
runc, no 2.x unpacked), and fails when ``CI`` is set.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import realcontainerd
from ctrstate import META_DB, SEED, SNAP_DB, Capture, capture_disk, capture_listings, catalogue, parse_table
from dockerlab.export import export_image
from fakeroot_builder import bbolt
from fakeroot_builder.build import plan_root
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.plan import Plan
from fakeroot_builder.writer import write_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: boltcheck

# -- processes -------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=realcontainerd.VERSIONS, ids=lambda v: f"containerd-{v}")
def version(request: pytest.FixtureRequest) -> str:
    reason = realcontainerd.require(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


# -- the builder's side ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def plan() -> Plan:
    """The builder's plan of the full catalogue (with containers) for :data:`SEED`."""
    return plan_root(seed=SEED)


@pytest.fixture(scope="session")
def classic(plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> BuiltRoot:
    """``plan`` written as a classic /var/lib/docker root (what ``dockerlab export`` reads)."""
    target = tmp_path_factory.mktemp("classic") / "root"
    return BuiltRoot(target, plan.truth(write_plan(plan, target)))


@pytest.fixture(scope="session")
def archives(classic: BuiltRoot, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``dockerlab export`` of every catalogue image."""
    out = tmp_path_factory.mktemp("exports")
    return {name: export_image(classic.path, name, out / f"{name.replace(':', '_')}.tar") for name in catalogue()}


# -- (a) ctr images import into an empty containerd ------------------------------------------------

_IMPORTED: dict[str, Capture] = {}


@pytest.fixture(scope="session")
def imported(version: str, archives: dict[str, Path], classic: BuiltRoot) -> Iterator[Capture]:
    """An empty containerd ``version`` after importing every archive (captured, then stopped)."""
    if version not in _IMPORTED:
        cap = Capture(version)
        c = realcontainerd.Containerd(version)
        try:
            with c:
                assert not parse_table(c.ctr("snapshots", "ls")), "the daemon is not empty"
                for name in catalogue():
                    c.ctr("images", "import", str(archives[name]), timeout=300)
                capture_listings(c, cap)
                c.ctr("leases", "create", "--id", "conformance-gc")  # then a synchronous GC
                c.ctr("leases", "rm", "--sync", "conformance-gc")
                cap.content_after_gc = {row[0] for row in parse_table(c.ctr("content", "ls"))}
                # what dockerlab's tools do on a live host: read the files while containerd runs
                cap.meta_live = bbolt.read(c.root / META_DB)
                cap.snap_db_live = bbolt.read(c.root / SNAP_DB)
            capture_disk(c.root, cap)
            for image in classic.truth.images:
                blob = c.root / "io.containerd.content.v1.content/blobs/sha256" / image.image_id[7:]
                if blob.exists():
                    cap.blobs[image.image_id] = blob.read_bytes()
        finally:
            c.stop()
            c.cleanup()
        _IMPORTED[version] = cap
    yield _IMPORTED[version]
