"""The union view's oracle is the real daemon: ``docker export`` vs the reference reader on our root.

* every catalogue image: ``docker create`` on the loaded image, ``docker export``; against the
  reader's union of the image's top layer (paths the init layer adds left out on both sides);
* every container the builder only created: its real twin's export against the reader's union of
  our container's RW layer (init layer included);
* every container that ran: a real container is created on the same image and its empty RW
  ``diff/`` filled with a copy of ours (whiteout devices and opaque xattrs kept). The kernel's
  overlay mount then shows the union: ``docker export`` must equal the reader's, and every change
  ``layer_changes`` reports must be one ``docker diff`` reports.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

import realdocker
from fakeroot_builder.cache import BuiltRoot
from fakeroot_builder.formats import OPAQUE_XATTRS, is_opaque, is_whiteout
from fakeroot_builder.plan import init_layer
from phases import CATALOGUE, Created, Loaded
from solutions.lab2.overlay import layer_changes
from union import export_union, reader_union, union_differences

pytestmark = pytest.mark.conformance

#: What ``docker create`` puts in every container (moby's initlayer), whatever the image has.
_INIT_PATHS = {e.path for e in init_layer().entries} | {"dev/pts", "dev/shm", "proc", "sys"}


def _export(daemon: realdocker.Daemon, container: str, out: Path) -> dict:
    archive = out / f"{container}.tar"
    daemon.docker("export", "-o", str(archive), container)
    return export_union(archive)


def _real_mount_id(daemon: realdocker.Daemon, real_id: str) -> str:
    return (Path(daemon.data_root) / "image/overlay2/layerdb/mounts" / real_id / "mount-id").read_text()


@pytest.mark.parametrize("name", CATALOGUE)
def test_export_of_every_image_is_the_readers_union(
    name: str, daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot, tmp_path: Path
) -> None:
    container = f"union-{name.replace(':', '-')}"
    daemon.docker("create", "--name", container, name)
    try:
        real = _export(daemon, container, tmp_path)
    finally:
        daemon.docker("rm", container)
    top = built.truth.image(name).layers[-1]
    ours = reader_union(built.path, top.cache_id)
    ours = {p: v for p, v in ours.items() if p not in _INIT_PATHS}
    real = {p: v for p, v in real.items() if p not in _INIT_PATHS}
    assert len(ours) > 5
    assert not union_differences(ours, real), f"{name}:\n" + "\n".join(union_differences(ours, real))


def test_export_of_every_created_container_is_the_readers_union(
    daemon: realdocker.Daemon, created: list[Created], built: BuiltRoot, tmp_path: Path
) -> None:
    problems = []
    for pair in created:
        mine = built.truth.container(pair.ours_id)
        ours = reader_union(built.path, mine.mount_id)
        real = _export(daemon, pair.real_name, tmp_path)
        problems += [f"{mine.image} (created): {line}" for line in union_differences(ours, real)]
    assert not problems, "\n".join(problems)


def _copy_layer(source: Path, target: Path) -> None:
    """Copy a layer's ``diff/`` content: files, links, 0/0 devices, opaque marks (not the kernel's
    own xattrs: their file handles point into our root, not the daemon's)."""
    for top, dirs, files in os.walk(source):
        rel = Path(top).relative_to(source)
        for name in dirs + files:
            src, dst = Path(top) / name, target / rel / name
            st = os.lstat(src)
            if is_whiteout(src):
                os.mknod(dst, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            elif stat.S_ISDIR(st.st_mode):
                dst.mkdir()
                if is_opaque(src):
                    os.setxattr(dst, OPAQUE_XATTRS[0], b"y")
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copyfile(src, dst)
            os.lchown(dst, st.st_uid, st.st_gid)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(dst, stat.S_IMODE(st.st_mode))


@pytest.fixture(scope="session")
def ran(daemon: realdocker.Daemon, loaded: dict[str, Loaded], built: BuiltRoot) -> list[Created]:
    """A real container per container of ours that ran, its RW layer a copy of ours."""
    out = []
    for index, mine in enumerate(c for c in built.truth.containers if c.state == "exited"):
        name = f"ran-{index}"
        real_id = str(daemon.docker("create", "--name", name, mine.image).stdout).strip()
        diff = Path(daemon.data_root) / "overlay2" / _real_mount_id(daemon, real_id) / "diff"
        assert not any(diff.iterdir())
        _copy_layer(built.path / "overlay2" / mine.mount_id / "diff", diff)
        out.append(Created(mine.id, real_id, name))
    return out


def test_export_of_every_container_that_ran_is_the_readers_union(
    daemon: realdocker.Daemon, ran: list[Created], built: BuiltRoot, tmp_path: Path
) -> None:
    assert ran, "the catalogue has no container that ran"
    problems = []
    for pair in ran:
        mine = built.truth.container(pair.ours_id)
        ours = reader_union(built.path, mine.mount_id)
        real = _export(daemon, pair.real_name, tmp_path)
        problems += [f"{mine.image} (ran): {line}" for line in union_differences(ours, real)]
    assert not problems, "\n".join(problems)


def _docker_diff(daemon: realdocker.Daemon, container: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"A": set(), "C": set(), "D": set()}
    for line in str(daemon.docker("diff", container).stdout).splitlines():
        kind, _, path = line.partition(" ")
        out[kind].add(path)
    return out


def _naive_diff(parent: dict, top: dict) -> dict[str, set[str]]:
    """What ``docker diff`` says when the daemon compares the two mounted trees (overlay2's "naive
    diff", used when the kernel has overlay's redirect_dir, as here): every path the container
    shows that its parent does not is ``A``; a path that went away is ``D``, children of a
    deleted (or replaced) directory not listed."""
    gone = set(parent) - set(top)
    return {
        "A": {"/" + p for p in set(top) - set(parent)},
        "D": {"/" + p for p in gone if top.get(os.path.dirname(p), {"kind": "dir"}).get("kind") == "dir"
              and os.path.dirname(p) not in gone},
    }


def test_docker_diff_agrees_with_the_readers_unions(daemon: realdocker.Daemon, ran: list[Created], built: BuiltRoot) -> None:
    """``A`` and ``D`` of ``docker diff`` are the difference between the reader's union of the RW
    layer and of the init layer below it; and every change ``layer_changes`` reports is in
    ``docker diff`` with its letter, except names inside an opaque directory of the RW layer:
    the lab calls them added, ``docker diff`` calls a name a lower layer had ``C`` and lists
    each hidden lower name as ``D`` (see the README's daemon facts)."""
    problems = []
    for pair in ran:
        mine = built.truth.container(pair.ours_id)
        real = _docker_diff(daemon, pair.real_name)
        derived = _naive_diff(reader_union(built.path, mine.init_id), reader_union(built.path, mine.mount_id))
        for letter in "AD":
            problems += [f"{mine.image}: docker diff lacks {letter} {p}" for p in sorted(derived[letter] - real[letter])]
            problems += [f"{mine.image}: docker diff has {letter} {p}" for p in sorted(real[letter] - derived[letter])]
        ours = layer_changes(str(built.path), mine.mount_id)
        inside_opaque = tuple(d + "/" for d in ours["opaque"])
        expect = {
            "A": {p for p in ours["added"] if not p.startswith(inside_opaque)},
            "C": set(ours["changed"]),
            "D": set(ours["deleted"]),
        }
        for letter in "ACD":
            problems += [f"{mine.image}: docker diff lacks {letter} {p} (layer_changes)" for p in sorted(expect[letter] - real[letter])]
    assert not problems, "\n".join(problems)
