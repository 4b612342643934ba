"""Collecting a class: one folder (or zip) per student, of which only ``labs/**/*.py`` is kept."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .sandbox import MAX_FILE, MAX_FILES, copy_labs

__all__ = ["Submission", "collect", "stage"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


@dataclass(frozen=True)
class Submission:
    """A student id and where their hand-in is: a folder holding ``labs/``, or a zip of one."""

    student: str
    source: Path


def collect(class_dir: Path) -> list[Submission]:
    """Every submission of ``class_dir``: ``<student>/`` folders (a git checkout is one) and ``<student>.zip``."""
    out: dict[str, Submission] = {}
    for entry in sorted(class_dir.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        student = entry.stem if entry.suffix == ".zip" and entry.is_file() else entry.name
        if not (entry.is_dir() or entry.suffix == ".zip") or not _ID.match(student):
            continue
        out.setdefault(student, Submission(student, entry))
    return list(out.values())


def _labs_prefix(names: list[str]) -> PurePosixPath | None:
    """Where ``labs/`` sits in a zip: at the top, or under one folder (``repo-main/labs``)."""
    candidates = sorted(
        {PurePosixPath(*PurePosixPath(n).parts[: PurePosixPath(n).parts.index("labs") + 1])
         for n in names if "labs" in PurePosixPath(n).parts[:2]},
        key=lambda p: len(p.parts),
    )
    return candidates[0] if candidates else None


def _unzip_labs(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        prefix = _labs_prefix([m.filename for m in members])
        if prefix is None:
            return
        kept = 0
        for member in members:
            path = PurePosixPath(member.filename)
            if not path.is_relative_to(prefix) or path.suffix != ".py" or ".." in path.parts:
                continue
            mode = member.external_attr >> 16
            if mode and (mode & 0o170000) not in (0, 0o100000):  # symlinks and devices in zips
                continue
            if member.file_size > MAX_FILE or kept >= MAX_FILES:
                continue
            dest = target / path.relative_to(prefix)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(dest, "wb") as out:
                out.write(src.read(MAX_FILE + 1)[:MAX_FILE])
            kept += 1


def stage(submission: Submission, target: Path) -> Path:
    """Copy the lab files of ``submission`` into ``target/labs``; returns ``target``."""
    labs = target / "labs"
    labs.mkdir(parents=True, exist_ok=True)
    if submission.source.is_dir():
        copy_labs(submission.source / "labs", labs)
    else:
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            try:
                _unzip_labs(submission.source, Path(tmp))
            except (zipfile.BadZipFile, OSError, ValueError):
                pass
            copy_labs(Path(tmp), labs)
            shutil.rmtree(tmp, ignore_errors=True)
    return target
