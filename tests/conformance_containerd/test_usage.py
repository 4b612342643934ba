"""The usage a real containerd records when it commits a layer equals what ``--store containerd`` writes.

``ctr images import`` of our exports unpacks every catalogue layer on a real overlayfs
snapshotter, which measures ``fs/`` at commit (``inodes``, ``size`` in ``metadata.db``). The
builder computes the same two numbers without a file system (``containerd_store.disk_usage``).
Sizes are allocated blocks, so this holds on ext4 (the machines here and CI); elsewhere it skips.
"""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from ctrstate import Capture
from fakeroot_builder.containerd_store import plan_containerd
from fakeroot_builder.plan import Plan

pytestmark = pytest.mark.conformance


def _varint(data: bytes) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return (value >> 1) ^ -(value & 1)


def test_committed_snapshots_record_the_usage_the_builder_writes(imported: Capture, plan: Plan):
    fs_type = subprocess.run(["stat", "-f", "-c", "%T", tempfile.gettempdir()], capture_output=True, text=True).stdout.strip()
    if fs_type != "ext2/ext3":
        pytest.skip(f"usage is measured in ext4 blocks; {tempfile.gettempdir()} is {fs_type}")
    ours = plan_containerd(plan).containerd_truth()
    checked = []
    for name, record in imported.snap_db.bucket("v1", "snapshots").items.items():
        if b"inodes" not in record:
            continue
        key = name.decode().split("/", 2)[2]
        snap = ours.snapshot(key)
        real = (_varint(record[b"inodes"]), _varint(record[b"size"]))
        assert real == (snap.inodes, snap.size), f"containerd {imported.version}: {key} (inodes, bytes)"
        checked.append(key)
    assert set(checked) == {layer.db_id for image in plan.images for layer in image.layers}
