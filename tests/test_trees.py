"""copy_tree and remove_tree: mode-0000 directories as an ordinary user, any depth, no symlink followed.

Every test runs as the current user and, when that is root, again as ``nobody`` in a forked
child, so the ordinary user's path (borrowing a mode to read a 0000 directory) is checked in
root's CI runs too.
"""

from __future__ import annotations

import os
import pickle
import resource
import stat
import tempfile
import traceback
from pathlib import Path

import pytest

from fakeroot_builder.cache import cached_root, copy_root
from fakeroot_builder.safety import remove_tree
from fakeroot_builder import trees
from fakeroot_builder.trees import copy_tree

NOBODY = 65534
IS_ROOT = os.geteuid() == 0
USERS = ["self", "nobody"] if IS_ROOT else ["self"]


def run_as(user: str, fn, *args):
    """``fn(*args)`` in this process, or for ``nobody`` in a forked child with its uid and gid."""
    if user == "self":
        return fn(*args)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            out = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001
            out = (False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        with os.fdopen(w, "wb") as fh:
            pickle.dump(out, fh)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        ok, value = pickle.load(fh)
    os.waitpid(pid, 0)
    if not ok:
        pytest.fail(f"as nobody: {value}")
    return value


@pytest.fixture
def scratch():
    """A directory both this user and (as root) nobody may work in, owned by the user under test."""
    top = tempfile.mkdtemp(prefix="i7-trees-")
    os.chmod(top, 0o755)
    yield Path(top)
    remove_tree(top)


def own(path: Path, user: str) -> Path:
    path.mkdir()
    if user == "nobody":
        os.chown(path, NOBODY, NOBODY)
    return path


def snapshot(top: str) -> dict[str, tuple]:
    """Everything copy_tree promises to keep, per path (walked with root's or the owner's rights)."""
    out = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files + ["."]:
            path = os.path.normpath(os.path.join(dirpath, name))
            if name == "." and dirpath != top:
                continue
            st = os.lstat(path)
            rel = os.path.relpath(path, top)
            try:
                xattrs = {n: os.getxattr(path, n, follow_symlinks=False) for n in os.listxattr(path, follow_symlinks=False)}
            except PermissionError:
                xattrs = "unreadable"
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            data = None
            if stat.S_ISREG(st.st_mode):
                first = inodes.setdefault((st.st_dev, st.st_ino), rel)
                with open(path, "rb") as fh:
                    data = (fh.read(), first if st.st_nlink > 1 else None)
            mtime = None if stat.S_ISLNK(st.st_mode) or name == "." else st.st_mtime_ns
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev, st.st_uid, st.st_gid,
                        xattrs, link, data, mtime)
    return out


def make_tree(top: Path) -> None:
    """Files, a hard link, a symlink out of the tree, a whiteout, a 0000 directory holding a
    0000 file and a 0000 empty directory, an unwritable directory, setgid and sticky modes."""
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_bytes(b"hello")
    os.link(top / "a" / "b" / "f", top / "a" / "hard")
    os.symlink("/etc", top / "a" / "out")
    os.symlink("b/f", top / "a" / "rel")
    os.mknod(top / "a" / "wh", stat.S_IFCHR | 0, os.makedev(0, 0))
    os.setxattr(top / "a" / "b", "user.overlay.opaque", b"y")
    work = top / "work" / "work"
    work.mkdir(parents=True)
    (work / "secret").write_bytes(b"x" * 3)
    (work / "empty").mkdir()
    os.chmod(work / "secret", 0)
    os.chmod(work / "empty", 0)
    os.chmod(work, 0)
    (top / "ro").mkdir()
    (top / "ro" / "kept").write_bytes(b"")
    os.chmod(top / "ro", 0o555)
    (top / "sticky").mkdir(mode=0o1777)
    os.chmod(top / "sticky", 0o1777)
    os.utime(top / "a" / "b" / "f", ns=(1, 1_000_000_000))


def raw_view(top: str) -> dict[str, tuple]:
    """snapshot() of a tree holding 0000 entries, with the modes opened up only to look."""
    opened = []
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o500 != 0o500 and (
                    stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) & 0o400 == 0):
                opened.append((p, stat.S_IMODE(st.st_mode)))
                os.chmod(p, stat.S_IMODE(st.st_mode) | (0o700 if stat.S_ISDIR(st.st_mode) else 0o400))
    # os.walk (top down) lists a directory only after the loop above opened it: put modes back
    snap = snapshot(top)
    for p, m in reversed(opened):
        os.chmod(p, m)
        rel = os.path.relpath(p, top)
        snap[rel] = snap[rel][:1] + (m,) + snap[rel][2:]
    return snap


def _copy_and_compare(top: str) -> tuple[dict, dict]:
    src, dst = os.path.join(top, "src"), os.path.join(top, "dst")
    os.mkdir(src)
    make_tree(Path(src))
    before = raw_view(src)
    copy_tree(src, dst)
    return before, (raw_view(src), raw_view(dst))


@pytest.mark.parametrize("user", USERS)
def test_copy_tree_keeps_everything_and_the_source(scratch, user):
    top = own(scratch / "t", user)
    before, (after, copy) = run_as(user, _copy_and_compare, str(top))
    assert after == before, "the source must be left exactly as it was (modes borrowed are put back)"
    assert copy.keys() == before.keys()
    for rel, entry in before.items():
        if rel == ".":
            assert copy[rel][:2] == entry[:2]
            continue
        assert copy[rel] == entry, rel
    assert before["work/work"][1] == 0 and before["work/work/secret"][7][0] == b"xxx"
    assert before["a/hard"][7][1] == copy["a/hard"][7][1], "hard links stay linked"


def _deep(path: str, depth: int) -> tuple[int, int]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, limits[1]))  # a constant number of open files
    try:
        return _deep_within_limit(path, depth)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def _deep_within_limit(path: str, depth: int) -> tuple[int, int]:
    os.mkdir(path)
    top = path
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):  # build it relative to fds: the full path is far beyond PATH_MAX
            os.mkdir("dir-with-a-rather-long-name", dir_fd=fd)
            nfd = os.open("dir-with-a-rather-long-name", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.mknod("leaf", stat.S_IFREG | 0o600, dir_fd=fd)
        os.chmod(fd, 0)
    finally:
        os.close(fd)
    copy_tree(os.path.join(path), path + "-copy")
    count, mode = 0, None
    fd = os.open(path + "-copy", os.O_RDONLY)
    try:
        while os.listdir(fd) == ["dir-with-a-rather-long-name"]:
            count += 1
            mode = stat.S_IMODE(os.stat("dir-with-a-rather-long-name", dir_fd=fd).st_mode)
            if mode == 0:  # the deepest one, 0000 as in the source
                break
            nfd = os.open("dir-with-a-rather-long-name", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    remove_tree(path)
    remove_tree(path + "-copy")
    assert not os.path.lexists(path) and not os.path.lexists(path + "-copy")
    return count, mode


@pytest.mark.parametrize("user", USERS)
def test_deep_trees_copy_and_remove_without_recursion(scratch, user):
    top = own(scratch / "deep", user)
    count, mode = run_as(user, _deep, str(top / "t"), 1100)
    assert (count, mode) == (1100, 0)


def _remove_with_links_out(top: str) -> dict:
    outside = os.path.join(top, "outside")
    os.makedirs(os.path.join(outside, "locked"))
    with open(os.path.join(outside, "keep"), "w") as fh:
        fh.write("keep")
    os.chmod(os.path.join(outside, "locked"), 0)
    tree = os.path.join(top, "tree")
    make_tree(Path(tree))
    os.symlink(outside, os.path.join(tree, "work", "link-to-outside"), target_is_directory=True)
    os.symlink(os.path.join(outside, "locked"), os.path.join(tree, "locked"))
    os.symlink(os.path.join(outside, "keep"), os.path.join(tree, "keep"))
    os.chmod(os.path.join(tree, "work"), 0)
    remove_tree(tree)
    link = os.path.join(top, "link")
    os.symlink(outside, link)
    remove_tree(link)  # a link at the top is removed as a link
    remove_tree(os.path.join(top, "missing"))  # nothing there: nothing to do
    return {
        "tree": os.path.lexists(tree),
        "link": os.path.lexists(link),
        "outside": sorted(os.listdir(outside)),
        "locked": stat.S_IMODE(os.lstat(os.path.join(outside, "locked")).st_mode),
        "keep": open(os.path.join(outside, "keep")).read(),
    }


@pytest.mark.parametrize("user", USERS)
def test_remove_tree_stays_inside_and_follows_no_link(scratch, user):
    top = own(scratch / "r", user)
    got = run_as(user, _remove_with_links_out, str(top))
    assert got == {"tree": False, "link": False, "outside": ["keep", "locked"], "locked": 0, "keep": "keep"}


def test_copy_root_of_a_mounted_root_keeps_work_work(tmp_path):
    source = cached_root(seed=5, images=["alpine:3.19"])
    works = sorted(p for p in (source.path / "overlay2").glob("*/work/work"))
    assert works, "a root with a container has mounted layers"
    copy = copy_root(source, tmp_path / "copy")
    for work in works:
        twin = copy.path / work.relative_to(source.path)
        assert stat.S_IMODE(os.lstat(twin).st_mode) == 0 == stat.S_IMODE(os.lstat(work).st_mode)
    want, got = snapshot(str(source.path)), snapshot(str(copy.path))
    assert got.keys() == want.keys()
    assert all(got[rel] == want[rel] for rel in want if rel != ".")
    remove_tree(copy.path)
    assert not copy.path.exists()


def test_copy_tree_refuses_an_existing_target_and_leaves_no_half_copy(scratch, monkeypatch):
    src, dst = scratch / "src", scratch / "dst"
    src.mkdir()
    make_tree(src)
    before = raw_view(str(src))
    dst.mkdir()
    with pytest.raises(FileExistsError):
        copy_tree(src, dst)
    assert os.listdir(dst) == []
    dst.rmdir()
    real = trees._Copier._file

    def fail_inside_work(self, name, st, s, d):
        if name == "secret":
            raise OSError(5, "disk on fire", name)
        return real(self, name, st, s, d)

    monkeypatch.setattr(trees._Copier, "_file", fail_inside_work)
    with pytest.raises(OSError, match="disk on fire"):
        copy_tree(src, dst)
    assert not dst.exists(), "a failed copy leaves nothing behind"
    assert raw_view(str(src)) == before, "and puts back every mode it borrowed"


def test_a_cached_root_left_open_by_a_killed_copy_is_resealed(tmp_path):
    """A copy killed outright (SIGKILL) while it borrowed work/work's mode leaves it open; the
    next use of the cached root gives it mode 0000 back, as on a real host."""
    first = cached_root(seed=5, images=["alpine:3.19"], base=tmp_path)
    works = sorted(first.path.glob("overlay2/*/work/work"))
    assert works and all(stat.S_IMODE(w.lstat().st_mode) == 0 for w in works)
    os.chmod(works[0], 0o700)  # what the killed copy left
    again = cached_root(seed=5, images=["alpine:3.19"], base=tmp_path)
    assert again.path == first.path
    assert [stat.S_IMODE(w.lstat().st_mode) for w in works] == [0] * len(works)
    assert trees.reseal(again.path, ["overlay2/*/work/work"]) == []


# -- restore_copy: a damaged copy put back as it was copied --------------------------------------


def _damages(dst: Path):
    """Every kind of change a test may make to a copy, one at a time."""
    yield "a file rewritten", lambda: (dst / "a" / "b" / "f").write_bytes(b"HELLO")
    yield "a file removed", lambda: (dst / "top.txt").unlink()
    yield "a folder removed", lambda: remove_tree(dst / "a" / "b")
    yield "a file added", lambda: (dst / "a" / "new").write_bytes(b"x")
    yield "a symlink retargeted", lambda: ((dst / "a" / "rel").unlink(), os.symlink("nowhere", dst / "a" / "rel"))
    yield "a mode changed", lambda: os.chmod(dst / "top.txt", 0o777)
    yield "a folder's xattr changed", lambda: os.setxattr(dst / "a", "user.overlay.opaque", b"y")
    yield "a folder's xattr removed", lambda: os.removexattr(dst / "a" / "b", "user.overlay.opaque")
    yield "a folder became a file", lambda: (remove_tree(dst / "a" / "b"), (dst / "a" / "b").write_bytes(b"f"))
    yield "a file became a folder", lambda: ((dst / "top.txt").unlink(), (dst / "top.txt").mkdir())
    yield "a whiteout removed", lambda: (dst / "a" / "wh").unlink()
    yield "a file renamed over another", lambda: os.replace(dst / "a" / "b" / "g", dst / "top.txt")
    yield "nothing", lambda: None


def _restorable_tree(top: Path) -> None:
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_bytes(b"hello")
    (top / "a" / "b" / "g").write_bytes(b"other")
    (top / "top.txt").write_bytes(b"top")
    os.symlink("b/f", top / "a" / "rel")
    os.mknod(top / "a" / "wh", stat.S_IFCHR | 0, os.makedev(0, 0))
    os.setxattr(top / "a" / "b", "user.overlay.opaque", b"y")
    os.chmod(top / "a", 0o710)
    for p in (top / "a" / "b" / "f", top / "a" / "b", top / "a", top / "top.txt"):
        os.utime(p, ns=(1, 1_000_000_000))


@pytest.mark.skipif(not IS_ROOT, reason="the whiteout device needs root (mknod)")
def test_restore_copy_undoes_every_kind_of_damage_and_only_that(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _restorable_tree(src)
    expected = snapshot(str(src))
    source = trees.tree_state(src)
    copy_tree(src, dst)
    state = trees.tree_state(dst)
    for what, damage in _damages(dst):
        trees.wait_past(state)
        damage()
        inode = os.lstat(dst / "a" / "b" / "g").st_ino if (dst / "a" / "b" / "g").exists() else None
        restored = trees.restore_copy(src, dst, state, source)
        assert restored is not None, what
        assert snapshot(str(dst)) == expected, what
        if what != "a folder removed" and what != "a folder became a file" and inode is not None:
            assert os.lstat(dst / "a" / "b" / "g").st_ino == inode, f"{what}: an untouched file was copied again"
        state = restored
    assert snapshot(str(src)) == expected, "the source must not change"


def test_restore_copy_gives_up_on_hard_links_and_on_what_it_cannot_prove(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"one")
    os.link(src / "f", src / "g")
    (src / "h").write_bytes(b"h")
    source = trees.tree_state(src)
    copy_tree(src, dst)
    state = trees.tree_state(dst)
    trees.wait_past(state)
    (dst / "f").write_bytes(b"two")  # both names of the link change: a whole new copy keeps them linked
    assert trees.restore_copy(src, dst, state, source) is None
    remove_tree(dst)
    copy_tree(src, dst)
    state = trees.tree_state(dst)
    os.utime(dst / "h", ns=(5, 5))  # a change the state before did not see (its ctime is compared, not
    forged = dict(state)            # its mtime): put it back in the state to play a missed change
    forged["h"] = trees.tree_state(dst)["h"]
    assert trees.restore_copy(src, dst, forged, source) is None, "the final check against the source must catch it"
