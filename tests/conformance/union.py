"""The union view two ways: what the reference reader computes from a root, what ``docker export`` shows.

``reader_union`` stacks a layer's ``diff/`` on its lower chain with the reference reader
(``solutions.lab2.overlay``: ``lower_chain`` and the visibility rule ``layer_changes`` uses), so
the real daemon's kernel overlay mount is the oracle of lab 2 task 5's rules. ``export_union``
reads the tar ``docker export`` writes. Both describe each path the same way: its kind, mode,
owner, and content digest or link target; hard links are compared by content.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

from fakeroot_builder.formats import is_whiteout
from solutions.lab2.overlay import _visible_below, lower_chain

__all__ = ["export_union", "reader_union", "union_differences"]

_NOWHERE = "/nonexistent-layer-on-top"  # an empty layer stacked on top: _visible_below then
# answers "does the union of the lowers show this path?"


def _describe_file(path: Path) -> dict[str, Any]:
    st = os.lstat(path)
    info: dict[str, Any] = {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISDIR(st.st_mode):
        info["kind"] = "dir"
    elif stat.S_ISLNK(st.st_mode):
        info |= {"kind": "symlink", "target": os.readlink(path)}
        del info["mode"]
    elif stat.S_ISREG(st.st_mode):
        info |= {"kind": "file", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    else:
        info["kind"] = stat.filemode(st.st_mode)[0]
    return info


def reader_union(root: Path, cache_id: str) -> dict[str, dict[str, Any]]:
    """Every path a mount of layer ``cache_id`` (on its lower chain) shows, as the reader sees it."""
    diffs = [str(root / "overlay2" / c / "diff") for c in [cache_id, *lower_chain(str(root), cache_id)]]
    out: dict[str, dict[str, Any]] = {}
    decided: set[str] = set()
    for diff in diffs:  # nearest first: the first layer holding a path decides it
        for top, dirs, files in os.walk(diff):
            for name in dirs + files:
                path = os.path.join(top, name)
                rel = os.path.relpath(path, diff)
                if rel in decided:
                    continue
                decided.add(rel)
                if not is_whiteout(path) and _visible_below(rel, _NOWHERE, diffs):
                    out[rel] = _describe_file(Path(path))
    return out


def export_union(archive: Path) -> dict[str, dict[str, Any]]:
    """Every path of a ``docker export`` tar, described like :func:`reader_union` does."""
    out: dict[str, dict[str, Any]] = {}
    digests: dict[str, str] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            rel = member.name.rstrip("/").removeprefix("./")
            if not rel or rel == ".":
                continue
            info: dict[str, Any] = {"mode": f"{member.mode & 0o7777:04o}", "uid": member.uid, "gid": member.gid}
            if member.isdir():
                info["kind"] = "dir"
            elif member.issym():
                info |= {"kind": "symlink", "target": member.linkname}
                del info["mode"]
            elif member.islnk():
                info |= {"kind": "file", "sha256": digests[member.linkname.rstrip("/").removeprefix("./")]}
            elif member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                digests[rel] = hashlib.sha256(data.read()).hexdigest()
                info |= {"kind": "file", "sha256": digests[rel]}
            else:
                info["kind"] = "other"
            out[rel] = info
    return out


def union_differences(ours: dict[str, dict[str, Any]], real: dict[str, dict[str, Any]], limit: int = 30) -> list[str]:
    """Short lines: paths only one side shows, and paths whose kind, mode or content differ."""
    lines = [f"the reader shows /{p}, docker export does not" for p in sorted(set(ours) - set(real))]
    lines += [f"docker export shows /{p}, the reader does not" for p in sorted(set(real) - set(ours))]
    for p in sorted(set(ours) & set(real)):
        if ours[p] != real[p]:
            keys = sorted(k for k in set(ours[p]) | set(real[p]) if ours[p].get(k) != real[p].get(k))
            lines.append(f"/{p}: " + ", ".join(f"{k} reader={ours[p].get(k)!r} export={real[p].get(k)!r}" for k in keys))
    return lines[:limit] + ([f"… and {len(lines) - limit} more"] if len(lines) > limit else [])
