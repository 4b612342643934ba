"""Helpers of the conformance suite: read a data root's layer store and describe trees comparably.

Everything here reads plain files, so the same helpers describe a real daemon's data root and
one the builder wrote. Random names (cache-ids, links, container ids, overlayfs leftovers) are
mapped or masked by the callers; what is left must be equal.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "describe_tree",
    "layer_dirs",
    "layerdb_files",
    "map_text",
    "stable_pull_lines",
    "store",
    "tree_differences",
]

_OVERLAY_XATTR = re.compile(r"^(trusted|user)\.overlay\.")
_UNSTABLE_PULL = re.compile(r": (Verifying Checksum|Download complete|Waiting)$")


def store(root: Path) -> Path:
    """``<root>/image/overlay2``."""
    return Path(root) / "image" / "overlay2"


def layerdb_files(root: Path, db_id: str) -> dict[str, bytes]:
    """The files of ``layerdb/sha256/<db id>/`` by name."""
    entry = store(root) / "layerdb" / "sha256" / db_id.removeprefix("sha256:")
    return {p.name: p.read_bytes() for p in sorted(entry.iterdir())}


def layer_dirs(root: Path) -> dict[str, tuple[str, str]]:
    """``{db id: (cache-id, link)}`` of every layer of the layer store."""
    out: dict[str, tuple[str, str]] = {}
    base = store(root) / "layerdb" / "sha256"
    if not base.is_dir():
        return out
    for entry in sorted(base.iterdir()):
        cache_id = (entry / "cache-id").read_text()
        link = (Path(root) / "overlay2" / cache_id / "link").read_text()
        out["sha256:" + entry.name] = (cache_id, link)
    return out


def _xattrs(path: Path) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for name in sorted(n for n in names if _OVERLAY_XATTR.match(n)):
        value = os.getxattr(path, name, follow_symlinks=False)
        # file handles and uuids the kernel makes up: only their presence can match
        out[name] = b"<kernel value>" if name.endswith((".origin", ".uuid")) else value
    return out


def _describe(path: Path, st: os.stat_result, with_mtime: bool) -> dict[str, Any]:
    mode = st.st_mode
    info: dict[str, Any] = {"mode": f"{stat.S_IMODE(mode):04o}", "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISDIR(mode):
        info["type"] = "dir"
    elif stat.S_ISREG(mode):
        info |= {"type": "file", "size": st.st_size, "nlink": st.st_nlink}
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(mode):
        info |= {"type": "symlink", "target": os.readlink(path)}
    elif stat.S_ISCHR(mode):
        info |= {"type": "char", "rdev": f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"}
    else:
        info["type"] = stat.filemode(mode)[0]
    whiteout = info["type"] == "char"  # its mtime is the time of the unpack, not the tar's
    if with_mtime and not whiteout:
        info["mtime"] = int(st.st_mtime)
    xattrs = _xattrs(path)
    if xattrs:
        info["xattrs"] = xattrs
    return info


def describe_tree(top: Path, *, with_mtime: bool = True) -> dict[str, dict[str, Any]]:
    """Every path under ``top`` → type, mode, owner, content, xattrs, mtime (``.``: ``top`` itself,
    without its mtime, which is the time of the unpack).

    Hard links are recorded as the sorted list of the other names of the same inode.
    """
    out: dict[str, dict[str, Any]] = {".": _describe(Path(top), os.lstat(top), with_mtime=False)}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(top).as_posix()
            st = os.lstat(path)
            out[rel] = _describe(path, st, with_mtime)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault(st.st_ino, []).append(rel)
    for names in inodes.values():
        for rel in names:
            out[rel]["hardlinks"] = sorted(set(names) - {rel})
    return out


def tree_differences(ours: Mapping[str, Mapping[str, Any]], real: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per difference: ``path: field ours=… real=…``, missing and extra paths."""
    lines: list[str] = []
    for rel in sorted(set(ours) | set(real)):
        if rel not in real:
            lines.append(f"{rel}: only in ours {dict(ours[rel])}")
        elif rel not in ours:
            lines.append(f"{rel}: only in the real daemon's {dict(real[rel])}")
        else:
            for key in sorted(set(ours[rel]) | set(real[rel])):
                a, b = ours[rel].get(key), real[rel].get(key)
                if a != b:
                    lines.append(f"{rel}: {key} ours={a!r} real={b!r}")
    return lines


def map_text(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every key of ``mapping`` replaced by its value (longest keys first)."""
    for old in sorted(mapping, key=len, reverse=True):
        text = text.replace(old, mapping[old])
    return text


def stable_pull_lines(transcript: str) -> list[str]:
    """The lines of a ``docker pull`` transcript whose order does not depend on download timing."""
    return [line for line in transcript.splitlines() if not _UNSTABLE_PULL.search(line)]
