"""bbolt's own consistency check of a file, from Python: builds and runs tests/tools/boltcheck.

The Go program is built offline against Debian's ``golang-go`` and
``golang-github-coreos-bbolt-dev`` (GOPATH=/usr/share/gocode, GO111MODULE=off: no module
download) once per source version, into ``<dockerlab cache>/boltcheck/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fakeroot_builder.bbolt import Bucket
from fakeroot_builder.cache import cache_dir

__all__ = ["BoltCheck", "GOPATH", "Walk", "build", "flatten", "on_ci", "unavailable"]

SOURCE = Path(__file__).resolve().parent / "tools" / "boltcheck" / "main.go"
GOPATH = "/usr/share/gocode"
_BBOLT_SRC = Path(GOPATH) / "src" / "go.etcd.io" / "bbolt" / "db.go"


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable() -> str | None:
    """Why the Go check cannot be built here, or None."""
    if not shutil.which("go"):
        return "the Go compiler is missing (apt-get install golang-go)"
    if not _BBOLT_SRC.exists():
        return f"bbolt's Go source is missing ({_BBOLT_SRC}; apt-get install golang-github-coreos-bbolt-dev)"
    return None


@dataclass(frozen=True)
class Walk:
    """What boltcheck saw: its summary line and every item, in cursor order."""

    summary: dict
    items: list[dict]
    extra: list[dict]


class BoltCheck:
    """A built boltcheck binary."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(self, path: str | os.PathLike, *flags: str, check: bool = True) -> Walk:
        done = subprocess.run(
            [str(self.binary), *flags, str(path)], capture_output=True, text=True, timeout=300, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"bbolt rejects {path}:\n{done.stderr.strip()}")
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        if not lines:
            raise AssertionError(f"boltcheck printed nothing for {path}:\n{done.stderr.strip()}")
        items = [x for x in lines[1:] if "path" in x]
        extra = [x for x in lines[1:] if "path" not in x]
        return Walk(lines[0], items, extra)


def build() -> BoltCheck:
    """Build (or reuse) the binary; raise RuntimeError when the toolchain is missing or fails."""
    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    version = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + version.encode() + _BBOLT_SRC.read_bytes()).hexdigest()[:16]
    home = cache_dir() / "boltcheck"
    binary = home / f"boltcheck-{key}"
    if binary.exists():
        return BoltCheck(binary)
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOPATH=GOPATH, GO111MODULE="off", GOCACHE=str(home / "go-build"), GOFLAGS="")
    tmp = home / f".boltcheck-{os.getpid()}"
    done = subprocess.run(
        ["go", "build", "-o", str(tmp), str(SOURCE)], capture_output=True, text=True, env=env, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"go build of {SOURCE} failed:\n{done.stderr}")
    os.replace(tmp, binary)
    return BoltCheck(binary)


def flatten(root: Bucket, path: list[str] | None = None) -> list[dict]:
    """``root`` as boltcheck prints it: one dict per item, depth first, keys in bbolt order."""
    out: list[dict] = []
    path = path or []
    for key in root:
        value = root.items[key]
        if isinstance(value, Bucket):
            out.append({"path": path, "key": key.hex(), "seq": value.sequence})
            out.extend(flatten(value, [*path, key.hex()]))
        else:
            out.append({"path": path, "key": key.hex(), "value": value.hex()})
    return out
