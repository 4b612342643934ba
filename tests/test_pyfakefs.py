"""The ``docker_root`` pytest fixture: the canonical root at /var/lib/docker, inside pyfakefs only.

The real-directory build to compare with is made before pyfakefs starts (a module fixture that
does not use ``fs``), and its snapshot is plain data, so both trees are walked the same way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fakeroot_builder import formats
from fakeroot_builder.build import build_root
from fakeroot_builder.plan import CANONICAL_SEED
from solutions.lab1 import layerdb
from solutions.lab2 import overlay

DATA_ROOT = "/var/lib/docker"


def snapshot(root: str) -> dict[str, tuple]:
    """Path → (type, mode, uid, gid, content / link target / device, xattrs) for every entry."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    body: object = fh.read()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode):
                body = getattr(st, "st_rdev", 0)  # pyfakefs has no st_rdev: its devices are 0/0
            else:
                body = None
            attrs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False))
                                 for n in os.listxattr(path, follow_symlinks=False)))
            out[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                                st.st_uid, st.st_gid, body, attrs)
    return out


IS_ROOT = os.geteuid() == 0


def as_root_would_write(snap: dict[str, tuple], forms: dict[str, str]) -> dict[str, tuple]:
    """An ordinary user's real build, in the forms root writes: ``user.overlay.*`` back to
    ``trusted.overlay.*``; owners left out (``test_fake_owners_are_the_layer_tars_owners``)."""
    if forms["owners"] != "yours":
        return snap
    assert {(e[2], e[3]) for e in snap.values()} == {(os.geteuid(), os.getegid())}
    out = {}
    for path, (kind, mode, _uid, _gid, body, attrs) in snap.items():
        if forms["kernel_xattrs"] == "user.overlay.*" and forms["opaque"] == "user.overlay.opaque":
            attrs = tuple(sorted((n.replace("user.overlay.", "trusted.overlay.", 1), v) for n, v in attrs))
        out[path] = (kind, mode, None, None, body, attrs)
    return out


def build_real(path: Path) -> dict[str, tuple]:
    """The canonical root written to a real directory, as a snapshot in root's forms."""
    truth = build_root(path, seed=CANONICAL_SEED)
    opened = []
    if not IS_ROOT:  # let this user see into the 0000 work/work directories of its own tree
        for work in sorted(path.glob("overlay2/*/work/work")):
            opened.append((work, stat.S_IMODE(work.lstat().st_mode)))
            os.chmod(work, 0o700)
    try:
        snap = snapshot(str(path))
    finally:
        for work, mode in opened:
            os.chmod(work, mode)
            rel = os.path.relpath(work, path)
            snap[rel] = snap[rel][:1] + (mode,) + snap[rel][2:]
    return as_root_would_write(snap, truth.forms)


def without_owners(snap: dict[str, tuple]) -> dict[str, tuple]:
    return snap if IS_ROOT else {k: v[:2] + (None, None) + v[4:] for k, v in snap.items()}


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory) -> dict[str, tuple]:
    return build_real(tmp_path_factory.mktemp("real") / "docker")


@pytest.fixture(scope="module")
def real_var_lib_docker() -> list[str] | None:
    """What the machine's own /var/lib/docker holds before any fake root is made."""
    return sorted(os.listdir(DATA_ROOT)) if os.path.isdir(DATA_ROOT) else None


def test_docker_root_is_built_at_var_lib_docker_in_the_fake_fs_only(real_var_lib_docker, docker_root, fs):
    assert str(docker_root.path) == DATA_ROOT
    assert os.path.isdir(os.path.join(DATA_ROOT, "image", "overlay2", "layerdb", "sha256"))
    assert fs.exists(os.path.join(DATA_ROOT, "overlay2", "l"))
    fs.pause()
    try:
        real = sorted(os.listdir(DATA_ROOT)) if os.path.isdir(DATA_ROOT) else None
    finally:
        fs.resume()
    assert real == real_var_lib_docker, "the fixture touched the machine's real /var/lib/docker"


def test_docker_root_tree_equals_the_real_directory_build(real_tree, docker_root):
    fake = without_owners(snapshot(DATA_ROOT))
    assert fake.keys() == real_tree.keys()
    differ = sorted(k for k in fake if fake[k] != real_tree[k])
    assert differ == [], f"{len(differ)} entries differ, e.g. {differ[:3]}: {[(fake[k], real_tree[k]) for k in differ[:1]]}"


@pytest.fixture
def nginx_root(docker_root_factory):
    """Only nginx (and its containers) at /var/lib/docker in pyfakefs: the same writer, fewer layers."""
    return docker_root_factory(images=["nginx:latest"])


def test_whiteouts_are_character_devices_in_the_fake_fs(nginx_root):
    truth = nginx_root.truth
    paths = [os.path.join(DATA_ROOT, layer.diff_dir, p.lstrip("/"))
             for layer in truth.layers().values() for p in layer.changes.deleted]
    paths += [os.path.join(DATA_ROOT, "overlay2", c.mount_id, "diff", p.lstrip("/"))
              for c in truth.containers for p in c.changes.deleted]
    assert paths
    for path in paths:
        st = os.lstat(path)
        assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0, path
        assert formats.is_whiteout(path), path
    opaque = [os.path.join(DATA_ROOT, layer.diff_dir, p.lstrip("/"))
              for layer in truth.layers().values() for p in layer.changes.opaque]
    assert opaque and all(formats.is_opaque(p) for p in opaque)


def test_fake_owners_are_the_layer_tars_owners(nginx_root):
    """Whoever runs the tests, the fake root is written as a daemon (root) writes it."""
    from fakeroot_builder.build import plan_root

    plan = plan_root(seed=CANONICAL_SEED, images=["nginx:latest"])
    checked = 0
    for lp in plan.layers.values():
        diff = os.path.join(DATA_ROOT, "overlay2", lp.cache_id, "diff")
        for e in lp.layer.entries:
            if e.kind in ("opaque", "hardlink"):
                continue
            st = os.lstat(os.path.join(diff, e.path))
            assert (st.st_uid, st.st_gid) == (e.uid, e.gid), e.path
            checked += 1
    assert checked > 100
    assert os.getuid() == 0, "inside the fake file system the test acts as root"


def test_reference_reader_resolves_nginx_in_the_fake_fs(nginx_root):
    image = nginx_root.truth.image("nginx:latest")
    assert layerdb.resolve_image(DATA_ROOT, "nginx") == image.image_id
    assert layerdb.image_stack(DATA_ROOT, "nginx") == list(image.db_ids)
    assert layerdb.stack_matches_config(DATA_ROOT, "nginx")
    for layer in image.layers:
        diff = layerdb.layer_diff_dir(DATA_ROOT, "nginx", layer.layer_id)
        assert diff == os.path.join(DATA_ROOT, layer.diff_dir) and os.path.isdir(diff)
        assert overlay.read_link(DATA_ROOT, layer.cache_id) == layer.link
    by_link = {layer.link: layer.cache_id for layer in nginx_root.truth.layers().values()}
    top = image.layers[-1]
    assert overlay.lower_chain(DATA_ROOT, top.cache_id) == [by_link[link] for link in top.lower]
    changed = next(layer for layer in image.layers if layer.changes.deleted or layer.changes.opaque)
    got = overlay.layer_changes(DATA_ROOT, changed.cache_id)
    assert got == {k: list(getattr(changed.changes, k)) for k in ("added", "changed", "deleted", "opaque")}
    assert overlay.check_lowers(DATA_ROOT) == []


def test_a_second_docker_root_is_a_faithful_independent_copy(real_tree, docker_root_factory, fs):
    first = docker_root_factory(path="/srv/first")  # written, or grafted if an earlier test wrote it
    second = docker_root_factory(path="/srv/second")  # grafted from the snapshot
    assert without_owners(snapshot(str(second.path))) == real_tree == without_owners(snapshot(str(first.path)))
    os.remove(os.path.join(second.path, "image/overlay2/repositories.json"))
    assert os.path.exists(os.path.join(first.path, "image/overlay2/repositories.json"))
    inodes = {os.lstat(os.path.join(t, n)).st_ino for t, d, f in os.walk("/srv") for n in d + f}
    with open("/srv/new-file", "w"):
        pass
    assert os.lstat("/srv/new-file").st_ino not in inodes, "new files must not reuse grafted inode numbers"
