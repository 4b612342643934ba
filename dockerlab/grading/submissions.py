"""Collecting a class: one folder (or zip) per student, of which only ``labs/**/*.py`` is kept.

Every entry of the class folder becomes a :class:`Submission`, so every student gets a row in
the gradebook: one whose name is not a valid student id, or clashes with what the grader writes
(``grades.csv``), is listed with its ``problem`` and not graded. Zips are checked before they
are opened (entry count from the end-of-archive record, unpacked size, depth), so a zip bomb or
a million-entry archive costs nothing.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fakeroot_builder.safety import remove_tree

from .report import RESERVED
from .sandbox import MAX_DEPTH, MAX_FILE, MAX_FILES, MAX_TOTAL, copy_labs

__all__ = ["Submission", "collect", "stage", "valid_id"]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
MAX_ZIP_BYTES = 64 * 1024 * 1024  #: size of a submitted zip
MAX_ZIP_ENTRIES = 10_000  #: entries in a submitted zip


def valid_id(student: str) -> bool:
    """A student id: letters, digits and ``._@+-``, starting with a letter or digit (no newline)."""
    return _ID.fullmatch(student) is not None


@dataclass(frozen=True)
class Submission:
    """A student id and where their hand-in is: a folder holding ``labs/``, or a zip of one.

    ``problem`` says why it is not graded (its row then scores 0 with that note).
    """

    student: str
    source: Path
    problem: str = ""


def _shown(name: str) -> str:
    """A name safe to print in the gradebook: anything outside the id alphabet escaped."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "._@+-") else f"\\x{ord(c):02x}" if ord(c) < 256
                  else f"\\u{ord(c):04x}" for c in name)
    return "?" + out[:120]


def collect(class_dir: Path) -> list[Submission]:
    """Every submission of ``class_dir``: ``<student>/`` folders (a git checkout is one) and ``<student>.zip``."""
    out: dict[str, Submission] = {}
    with os.scandir(class_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:
            continue
        student = name[:-4] if is_file and name.endswith(".zip") else name
        problem = ""
        if entry.is_symlink():
            problem = "a symlink, not a folder or zip of the class"
        elif not (is_dir or (is_file and name.endswith(".zip"))):
            continue  # a stray file (notes, a CSV of the class): not a submission
        if not valid_id(student):
            problem, student = "the folder name is not a valid student id (letters, digits, ._@+-)", _shown(student)
        elif student.casefold() in RESERVED:
            problem = f"the name clashes with the gradebook ({student}); rename the folder"
        if student in out:
            if not out[student].problem:
                continue  # a folder and a zip of the same student: the folder is graded
            student = _shown(name)
        out[student] = Submission(student, Path(entry.path), problem)
    return list(out.values())


def _zip_entries(source: Path) -> int:
    """The entry count the archive claims at its end (zip64 too), read before anything else."""
    size = source.stat().st_size
    with open(source, "rb") as fh:
        fh.seek(max(0, size - 65557))
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0:
            raise zipfile.BadZipFile("no end-of-archive record")
        entries = struct.unpack("<H", tail[at + 10:at + 12])[0]
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc >= 0 and entries == 0xFFFF:
            offset = struct.unpack("<Q", tail[loc + 8:loc + 16])[0]
            fh.seek(offset)
            record = fh.read(56)
            if record[:4] != b"PK\x06\x06":
                raise zipfile.BadZipFile("bad zip64 record")
            entries = struct.unpack("<Q", record[32:40])[0]
    return entries


def _unzip_labs(source: Path, target: Path) -> list[str]:
    """Unpack the ``labs/**/*.py`` of a zip into ``target``, within every budget; returns what was skipped."""
    if source.stat().st_size > MAX_ZIP_BYTES:
        return [f"the zip is larger than {MAX_ZIP_BYTES >> 20} MiB: not opened"]
    if _zip_entries(source) > MAX_ZIP_ENTRIES:
        return [f"the zip has more than {MAX_ZIP_ENTRIES} entries: not opened"]
    skipped: list[str] = []
    with zipfile.ZipFile(source) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()][:MAX_ZIP_ENTRIES]
        prefix = _labs_prefix([m.filename for m in members])
        if prefix is None:
            return ["no labs/ folder in the zip"]
        kept = total = 0
        for member in members:
            path = PurePosixPath(member.filename)
            if len(path.parts) > MAX_DEPTH + 3 or not path.is_relative_to(prefix) or path.suffix != ".py":
                continue
            rel = path.relative_to(prefix)
            if any(p in ("..", ".", "") or p.startswith(".") for p in rel.parts) or "\\" in member.filename:
                skipped.append(f"{ascii(member.filename)}: not a plain path")
                continue
            mode = member.external_attr >> 16
            if mode and (mode & 0o170000) not in (0, 0o100000):  # symlinks and devices in zips
                continue
            if member.file_size > MAX_FILE or kept >= MAX_FILES or total + member.file_size > MAX_TOTAL:
                skipped.append(f"{ascii(member.filename)}: over the size or count budget")
                continue
            dest = target
            for piece in rel.parts[:-1]:
                dest = dest / piece
                dest.mkdir(exist_ok=True)
            with archive.open(member) as src:
                data = src.read(MAX_FILE + 1)[:MAX_FILE]  # the real size, whatever the header said
            (dest / rel.parts[-1]).write_bytes(data)
            kept += 1
            total += len(data)
    return skipped


def _labs_prefix(names: list[str]) -> PurePosixPath | None:
    """Where ``labs/`` sits in a zip: at the top, or under one folder (``repo-main/labs``)."""
    best: PurePosixPath | None = None
    for name in names:
        parts = PurePosixPath(name).parts[:2]
        if "labs" in parts:
            candidate = PurePosixPath(*parts[: parts.index("labs") + 1])
            if best is None or len(candidate.parts) < len(best.parts):
                best = candidate
    return best


def stage(submission: Submission, target: Path) -> Path:
    """Copy the lab files of ``submission`` into ``target/labs`` (readable by the grader only)."""
    labs = target / "labs"
    labs.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    source = submission.source
    if stat.S_ISDIR(os.lstat(source).st_mode):
        copy_labs(source / "labs", labs)
    else:
        tmp = Path(tempfile.mkdtemp(dir=target))
        try:
            try:
                _unzip_labs(source, tmp)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
                    RuntimeError, struct.error):
                pass
            copy_labs(tmp, labs)
        finally:
            remove_tree(tmp)
    return target
