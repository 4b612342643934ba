"""Lab 3's reference reader against real containerd 1.6 and 2.x: what ``rmi_effect`` predicts is
what containerd's garbage collector really sweeps, and ``container_mount`` is what it mounts.

containerd runs on a copy of a containerd root we built (four images sharing a Debian base, their
containers held by leases as Docker holds them). For one image record after another, the reader
predicts (reading the live databases) what a removal frees; then ``ctr images rm --sync`` removes
the record and collects, and ``ctr content ls`` / ``ctr snapshots ls`` show what is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import realcontainerd
from ctrstate import SEED, parse_table
from dockerlab.impl import load
from fakeroot_builder.build import plan_root, write_store
from fakeroot_builder.cache import BuiltRoot, copy_root

pytestmark = pytest.mark.conformance

IMAGES = ["debian:bookworm-slim", "nginx:latest", "redis:7", "alpine:3.19"]
#: Removed in this order: a second name of nginx (frees nothing), images with containers (their
#: snapshots stay), then Debian, whose base layer the others still hold until they go too.
REMOVALS = ["nginx:1.25", "redis:7", "alpine:3.19", "debian:bookworm-slim", "nginx:latest"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltRoot:
    target = tmp_path_factory.mktemp("lab3") / "containerd"
    return BuiltRoot(target, write_store(plan_root(seed=SEED, images=IMAGES), target, "containerd"))


def _state(c: realcontainerd.Containerd) -> tuple[set[str], set[str]]:
    content = {row[0] for row in parse_table(c.ctr("content", "ls"))}
    snapshots = {row[0] for row in parse_table(c.ctr("snapshots", "--snapshotter", "overlayfs", "ls"))}
    return content, snapshots


def test_rmi_effect_is_what_containerd_collects(version: str, built: BuiltRoot, tmp_path: Path):
    root = tmp_path / "root"
    copy_root(built, root)
    lab3 = load("lab3", "solutions")
    assert {x.image for x in built.truth.containerd.containers} >= {"redis:7", "alpine:3.19"}
    c = realcontainerd.Containerd(version, root=root)
    try:
        with c:
            mnt = tmp_path / "mnt"
            mnt.mkdir()
            for container in built.truth.containerd.containers:
                mount = lab3.container_mount(str(root), container.id)
                real = c.ctr("snapshots", "--snapshotter", "overlayfs", "mounts", str(mnt), container.id)
                assert f"upperdir={mount['upperdir']}" in real and f"workdir={mount['workdir']}" in real
                assert f"lowerdir={':'.join(mount['lowerdir'])}" in real
            swept: dict[str, int] = {}
            for ref in REMOVALS:
                before = _state(c)
                predicted = lab3.rmi_effect(str(root), ref)
                name = lab3.image_target(str(root), ref)["name"]
                c.ctr("images", "rm", "--sync", name)
                content, snapshots = _state(c)
                assert before[0] - content == set(predicted["removed_content"]), ref
                assert before[1] - snapshots == set(predicted["removed_snapshots"]), ref
                assert set(predicted["kept_content"]) <= content and set(predicted["kept_snapshots"]) <= snapshots, ref
                swept[ref] = len(predicted["removed_content"]) + len(predicted["removed_snapshots"])
            assert swept["nginx:1.25"] == 0 and swept["redis:7"] > 0, swept  # the test removed something
    finally:
        c.stop()
        c.cleanup()
