"""What the containerd conformance tests share: names, and what a daemon showed and wrote.

Standard library and the project only (no pytest), so tests and conftest import it alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import realcontainerd
from fakeroot_builder import bbolt
from fakeroot_builder.plan import CANONICAL_SEED

__all__ = [
    "GO_TIME_RE", "META_DB", "NS", "SEED", "SNAP_DB", "SNAP_DIR", "Capture", "capture_disk", "capture_listings",
    "catalogue", "full_name", "parse_table",
]

#: Go's time.MarshalBinary of a UTC time (version 1, seconds, nanoseconds, offset -1 = UTC).
GO_TIME_RE = re.compile(rb"^\x01\x00\x00\x00\x0e.{8}\xff\xff$", re.S)
SEED = CANONICAL_SEED
NS = "moby"
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
SNAP_DB = "io.containerd.snapshotter.v1.overlayfs/metadata.db"
SNAP_DIR = "io.containerd.snapshotter.v1.overlayfs/snapshots"


def catalogue() -> list[str]:
    from fakeroot_builder.catalogue import IMAGES

    return [recipe.name for recipe in IMAGES]


def full_name(ref: str) -> str:
    """``nginx:latest`` -> ``docker.io/library/nginx:latest`` (how containerd names images)."""
    first = ref.split("/")[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


@dataclass
class Capture:
    """What one containerd showed (ctr) and wrote (both databases, the snapshot dirs)."""

    version: str
    images: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (media type, digest)
    content: dict[str, str] = field(default_factory=dict)  # digest -> ctr's size column
    content_after_gc: set[str] = field(default_factory=set)  # digests left by a garbage collection
    snapshots: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (parent, kind)
    meta: bbolt.Bucket | None = None
    snap_db: bbolt.Bucket | None = None
    meta_live: bbolt.Bucket | None = None  # read while the daemon ran (and held its flock)
    snap_db_live: bbolt.Bucket | None = None
    snapshot_dirs: list[str] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes (configs only)


def parse_table(text: str) -> list[list[str]]:
    """``ctr … ls`` output without its header, split on whitespace."""
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


def capture_listings(c: realcontainerd.Containerd, cap: Capture) -> None:
    for row in parse_table(c.ctr("images", "ls")):
        cap.images[row[0]] = (row[1], row[2])
    for row in parse_table(c.ctr("content", "ls")):
        cap.content[row[0]] = row[1]
    for line in c.ctr("snapshots", "--snapshotter", "overlayfs", "ls").splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            cap.snapshots[parts[0]] = (parts[1], parts[2])
        elif len(parts) == 2:
            cap.snapshots[parts[0]] = ("", parts[1])


def capture_disk(root: Path, cap: Capture) -> None:
    """After the daemon stopped: both databases and the snapshot directories."""
    cap.meta = bbolt.read(root / META_DB)
    cap.snap_db = bbolt.read(root / SNAP_DB)
    cap.snapshot_dirs = sorted(p.name for p in (root / SNAP_DIR).iterdir())
