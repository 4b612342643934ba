"""Our bbolt writer, alone, in front of real containerd 1.6 and 2.x.

A containerd fills a fresh root (``ctr images import``), stops; we read both databases and write
them anew with ``fakeroot_builder.bbolt`` (no freelist, fresh page layout, our checksums); the
same containerd, then the other version, start on the rewritten root and must list exactly the
same, and hand out the next snapshot id from the sequence we wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import realcontainerd
from ctrstate import META_DB, NS, SNAP_DB, parse_table
from fakeroot_builder import bbolt

pytestmark = pytest.mark.conformance

IMAGES = ("alpine:3.19", "busybox:latest")


def listings(c: realcontainerd.Containerd) -> dict[str, list]:
    """What ctr lists, after a synchronous garbage collection (import leaves garbage behind)."""
    c.ctr("leases", "create", "--id", "rewrite-gc")
    c.ctr("leases", "rm", "--sync", "rewrite-gc")
    return {
        "images": parse_table(c.ctr("images", "ls")),
        # digest, size, labels (printed in Go map order: sorted here); not the age
        "content": [(row[0], row[1], sorted(row[-1].split(","))) for row in parse_table(c.ctr("content", "ls"))],
        "snapshots": parse_table(c.ctr("snapshots", "--snapshotter", "overlayfs", "ls")),
    }


@contextlib.contextmanager
def daemon(version: str, root: Path) -> Iterator[realcontainerd.Containerd]:
    c = realcontainerd.Containerd(version, root=root)  # sockets in its own /tmp dir (108-byte limit)
    try:
        with c:
            yield c
    finally:
        c.cleanup()


@pytest.mark.parametrize("reader", realcontainerd.VERSIONS, ids=lambda v: f"then-{v}")
def test_containerd_reads_and_extends_databases_we_rewrote(version: str, reader: str, archives, tmp_path: Path):
    reason = realcontainerd.require(reader)
    if reason:
        pytest.skip(reason)
    root = tmp_path / "root"
    with daemon(version, root) as c:
        for name in IMAGES:
            c.ctr("images", "import", str(archives[name]))
        before = listings(c)
    for rel, mode in ((META_DB, 0o644), (SNAP_DB, 0o600)):
        bbolt.write(root / rel, bbolt.read(root / rel), mode=mode)
    sequence = bbolt.read(root / SNAP_DB).bucket("v1", "snapshots").sequence
    meta_sequence = bbolt.read(root / META_DB).bucket("v1", NS, "snapshots", "overlayfs").sequence
    top = before["snapshots"][-1][0]
    with daemon(reader, root) as c:
        assert listings(c) == before
        c.ctr("snapshots", "--snapshotter", "overlayfs", "prepare", "rewrite-probe", top)
        mounts = c.ctr("snapshots", "--snapshotter", "overlayfs", "mounts", "/mnt", "rewrite-probe")
    assert f"/snapshots/{sequence + 1}/fs" in mounts
    name = bbolt.read(root / META_DB).bucket("v1", NS, "snapshots", "overlayfs", "rewrite-probe")["name"]
    assert name == f"{NS}/{meta_sequence + 1}/rewrite-probe".encode()
