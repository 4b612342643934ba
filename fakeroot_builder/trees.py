"""Copy and remove whole trees the way an ordinary user can: mode-0000 directories included.

A mounted layer keeps ``work/work`` with mode 0000, as on a real host. Root reads and removes it
anyway; an ordinary user cannot even list it (``rm -rf`` and ``shutil.copytree`` stop there),
so both functions give a directory the user owns the permission they need first.

Both walk with a file descriptor on the current directory, one level at a time (no recursion:
any depth; a constant number of open files), open every entry relative to it with
``O_NOFOLLOW`` (a symlink is copied or removed as a link, never followed, and nothing is ever
chmod-ed through one), and check on the way back up that ``..`` is the directory they came from:
a tree changed under them makes them stop with an error, never act outside the tree.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["borrowed_mode", "copy_tree", "remove_tree", "reseal", "restore_copy", "tree_state", "wait_past"]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_NOFOLLOW | _O_CLOEXEC
_PROC_FD = "/proc/self/fd"
#: errors ``setxattr`` gives for attributes this user or file system may not have (as shutil)
_XATTR_REFUSED = (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.EINVAL)


def _euid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _chmod_entry(name: str, dir_fd: int, mode: int) -> None:
    """chmod the entry ``name`` of ``dir_fd`` itself, never what a symlink there points to."""
    if hasattr(os, "O_PATH") and os.path.isdir(_PROC_FD):
        fd = os.open(name, os.O_PATH | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "refusing to chmod through a symlink", name)
            os.chmod(f"{_PROC_FD}/{fd}", mode)  # the inode fd holds (what lchmod does on Linux)
        finally:
            os.close(fd)
    elif os.chmod in os.supports_follow_symlinks:  # macOS, BSD: lchmod
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    else:
        raise OSError(errno.EACCES, "no permission, and no way to chmod without following symlinks", name)


def _open(name: str, dir_fd: int, flags: int, need: int) -> tuple[int, int | None]:
    """Open ``name`` (relative to ``dir_fd``, never through a symlink).

    An entry this user owns but may not open (mode 0000) gets the ``need`` bits first; returns
    the fd and the mode to put back afterwards (``None`` when nothing was changed).
    """
    try:
        return os.open(name, flags, dir_fd=dir_fd), None
    except PermissionError:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if st.st_uid != _euid():
            raise
    old = stat.S_IMODE(st.st_mode)
    _chmod_entry(name, dir_fd, old | need)
    try:
        return os.open(name, flags, dir_fd=dir_fd), old
    except BaseException:
        with suppress(OSError):
            _chmod_entry(name, dir_fd, old)
        raise


def _up(fd: int, expected: tuple[int, int], where: str) -> int:
    """An fd on ``..`` of ``fd``, checked to be the directory the walk came down from."""
    up = os.open("..", _DIR & ~_O_NOFOLLOW, dir_fd=fd)
    if _ident(os.fstat(up)) != expected:
        os.close(up)
        raise OSError(errno.ESTALE, "the tree was moved while being walked; stopped", where)
    return up


@contextmanager
def _tree_lock(top: int) -> Iterator[None]:
    """The lock under which an ordinary user borrows modes in the tree whose top is ``top``."""
    if _euid() == 0:
        yield
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing to coordinate with
        yield
        return
    fcntl.flock(top, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(top, fcntl.LOCK_UN)


@contextmanager
def borrowed_mode(tree: str | os.PathLike[str], path: str | os.PathLike[str]) -> Iterator[Path]:
    """Let this user read the mode-0000 entry ``path`` of ``tree`` (a directory: list it too)
    for the duration of the ``with``, then put its mode back. Under the same lock as
    :func:`copy_tree`, so no copy of ``tree`` sees the borrowed mode. Root needs nothing."""
    top = os.open(os.fspath(tree), _DIR & ~_O_NOFOLLOW)
    try:
        with _tree_lock(top):
            if _euid() == 0:
                yield Path(path)
                return
            parent, name = os.path.split(os.path.abspath(path))
            pfd = os.open(parent, _DIR & ~_O_NOFOLLOW)
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                old = stat.S_IMODE(st.st_mode)
                _chmod_entry(name, pfd, old | (0o500 if stat.S_ISDIR(st.st_mode) else 0o400))
                try:
                    yield Path(path)
                finally:
                    _chmod_entry(name, pfd, old)
            finally:
                os.close(pfd)
    finally:
        os.close(top)


def reseal(tree: str | os.PathLike[str], patterns: Iterable[str]) -> list[Path]:
    """Give mode 0000 back to the directories of ``tree`` matching ``patterns`` (globs) that lost it.

    Only a process killed outright (SIGKILL) while it borrowed a mode leaves one open; this puts
    it back (under the copy lock, so no copy in progress is disturbed) and returns what it fixed.
    """
    def open_ones() -> list[Path]:
        return [p for pattern in patterns for p in Path(tree).glob(pattern)
                if not p.is_symlink() and p.is_dir() and stat.S_IMODE(p.lstat().st_mode) != 0]

    if not open_ones():  # the usual case: no lock needed
        return []
    top = os.open(os.fspath(tree), _DIR & ~_O_NOFOLLOW)
    try:
        with _tree_lock(top):
            fixed = open_ones()
            for p in fixed:
                pfd = os.open(p.parent, _DIR & ~_O_NOFOLLOW)
                try:
                    _chmod_entry(p.name, pfd, 0)
                finally:
                    os.close(pfd)
            return fixed
    finally:
        os.close(top)


# removing ---------------------------------------------------------------------------------------

def remove_tree(path: str | os.PathLike[str]) -> None:
    """``rm -rf path`` that also removes mode-0000 directories this user owns (``work/work``).

    A symlink is removed as a link, even at ``path``; nothing outside ``path`` is touched. A
    missing ``path`` is fine; anything that cannot be removed raises ``OSError``.
    """
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent, name = os.path.split(os.path.abspath(path))
    pfd = os.open(parent, _DIR & ~_O_NOFOLLOW)  # the parent may be reached through links: it was named
    try:
        _empty(pfd, name, path)
        os.rmdir(name, dir_fd=pfd)
    finally:
        os.close(pfd)


def _open_to_empty(name: str, dir_fd: int) -> int:
    fd, _ = _open(name, dir_fd, _DIR, 0o700)
    st = os.fstat(fd)
    if st.st_mode & 0o300 != 0o300 and st.st_uid == _euid():  # unlinking inside needs w and x
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
    return fd


def _empty(pfd: int, name: str, where: str) -> None:
    fd = _open_to_empty(name, pfd)
    here = _ident(os.fstat(fd))
    stack: list[tuple[tuple[int, int], str, list[str]]] = []  # (parent's identity, name, its pending)
    pending = os.listdir(fd)
    try:
        while True:
            if pending:
                entry = pending.pop()
                try:
                    st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(entry, dir_fd=fd)
                        continue
                    child = _open_to_empty(entry, fd)
                except FileNotFoundError:
                    continue
                stack.append((here, entry, pending))
                os.close(fd)
                fd, here, pending = child, _ident(os.fstat(child)), os.listdir(child)
                continue
            pending = os.listdir(fd)  # anything that appeared meanwhile
            if pending:
                continue
            if not stack:
                return
            done = here
            here, entry, pending = stack.pop()
            up = _up(fd, here, where)
            os.close(fd)
            fd = up
            with suppress(FileNotFoundError):
                if _ident(os.stat(entry, dir_fd=fd, follow_symlinks=False)) == done:
                    os.rmdir(entry, dir_fd=fd)
                else:  # replaced meanwhile: remove whatever is there now
                    pending.append(entry)
    finally:
        os.close(fd)


# copying ----------------------------------------------------------------------------------------

def copy_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy the directory ``src`` to the new directory ``dst``, as ``cp -a`` does.

    Keeps modes (0000 included), times, xattrs this user can read, symlinks as symlinks,
    device nodes (whiteouts), hard links within the tree and, as root, owners. A directory or
    file of ``src`` this user owns but may not read is made readable for the moment it is read
    and then put back, under an exclusive ``flock`` on ``src`` that every ordinary user's copy
    of the same tree takes, so no copy ever sees the borrowed mode.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    top = os.open(src, _DIR & ~_O_NOFOLLOW)
    try:
        with _tree_lock(top):
            os.mkdir(dst, 0o700)
            try:
                _Copier(src, dst).run(os.dup(top), os.open(dst, _DIR))
            except BaseException:
                remove_tree(dst)
                raise
    finally:
        os.close(top)


class _Copier:
    def __init__(self, src: str, dst: str) -> None:
        self.src, self.dst = src, dst
        self.root = _euid() == 0
        self.links: dict[tuple[int, int], str] = {}  # (dev, ino) of a multiply-linked file → its copy
        self.rel: list[str] = []  # where the walk is, below src and dst

    def _path(self, top: str, dir_fd: int, name: str) -> str:
        """A path naming ``name`` in ``dir_fd`` for calls that take no dir_fd (xattrs)."""
        if os.path.isdir(_PROC_FD):
            return f"{_PROC_FD}/{dir_fd}/{name}"
        return os.path.join(top, *self.rel, name)

    def run(self, s: int, d: int) -> None:
        stack: list[tuple[list[str], tuple[int, int], tuple[int, int], os.stat_result]] = []
        borrowed: list[tuple[int, int]] = []  # (fd, mode) of source directories made readable
        st = os.fstat(s)
        pending = os.listdir(s)
        try:
            while True:
                if pending:
                    name = pending.pop()
                    est = os.stat(name, dir_fd=s, follow_symlinks=False)
                    if not stat.S_ISDIR(est.st_mode):
                        self._entry(name, est, s, d)
                        continue
                    child_s, restore = _open(name, s, _DIR, 0o500)
                    if restore is not None:
                        borrowed.append((os.dup(child_s), restore))
                    try:
                        os.mkdir(name, 0o700, dir_fd=d)
                        child_d = os.open(name, _DIR, dir_fd=d)
                    except BaseException:
                        os.close(child_s)
                        raise
                    stack.append((pending, _ident(os.fstat(s)), _ident(os.fstat(d)), st))
                    os.close(s)
                    os.close(d)
                    s, d, st = child_s, child_d, est
                    self.rel.append(name)
                    pending = os.listdir(s)
                    continue
                if not stack:
                    self._finish_dir(s, d, st)
                    return
                pending, s_up_id, d_up_id, up_st = stack.pop()
                s_up = _up(s, s_up_id, self.src)
                try:
                    d_up = _up(d, d_up_id, self.dst)
                except BaseException:
                    os.close(s_up)
                    raise
                self._finish_dir(s, d, st)  # only once .. is open: a 0000 directory cannot be left
                if borrowed and _ident(os.fstat(borrowed[-1][0])) == _ident(os.fstat(s)):
                    fd, mode = borrowed.pop()
                    self._put_back(fd, mode)
                    os.close(fd)
                os.close(s)
                os.close(d)
                s, d, st = s_up, d_up, up_st
                self.rel.pop()
        finally:
            os.close(s)
            os.close(d)
            for fd, mode in reversed(borrowed):  # an error deep down: put back every borrowed mode
                self._put_back(fd, mode)
                os.close(fd)

    @staticmethod
    def _put_back(fd: int, mode: int | None) -> None:
        if mode is not None:
            with suppress(OSError):
                os.fchmod(fd, mode)

    def _finish_dir(self, s: int, d: int, st: os.stat_result) -> None:
        self._xattrs(s, d)
        if self.root:
            os.fchown(d, st.st_uid, st.st_gid)
        os.fchmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))

    def _xattrs(self, s: int | str, d: int | str) -> None:
        if not hasattr(os, "listxattr"):
            return
        try:
            names = os.listxattr(s, follow_symlinks=False) if isinstance(s, str) else os.listxattr(s)
        except OSError as exc:
            if exc.errno in _XATTR_REFUSED:
                return
            raise
        for name in names:
            try:
                if isinstance(s, str):
                    os.setxattr(d, name, os.getxattr(s, name, follow_symlinks=False), follow_symlinks=False)
                else:
                    os.setxattr(d, name, os.getxattr(s, name))
            except OSError as exc:
                if exc.errno not in _XATTR_REFUSED:
                    raise

    def _entry(self, name: str, st: os.stat_result, s: int, d: int) -> None:
        mode = st.st_mode
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                first = self.links.get(_ident(st))
                if first is not None:
                    with suppress(OSError):
                        os.link(first, name, dst_dir_fd=d, follow_symlinks=False)
                        return
                self.links[_ident(st)] = os.path.join(os.path.abspath(self.dst), *self.rel, name)
            self._file(name, st, s, d)
            return
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=s), name, dir_fd=d)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=d)
        else:  # a socket: nothing a root holds; skip it as cp does not
            return
        self._xattrs(self._path(self.src, s, name), self._path(self.dst, d, name))
        if self.root:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=d, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=d)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=d, follow_symlinks=False)

    def _file(self, name: str, st: os.stat_result, s: int, d: int) -> None:
        fi, restore = _open(name, s, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC, 0o400)
        try:
            fo = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600, dir_fd=d)
            try:
                while chunk := os.read(fi, 1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fo, view):]
                self._xattrs(fi, fo)
                if self.root:
                    os.fchown(fo, st.st_uid, st.st_gid)
                os.fchmod(fo, stat.S_IMODE(st.st_mode))
                os.utime(fo, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fo)
        finally:
            self._put_back(fi, restore)
            os.close(fi)


# putting a copy back ----------------------------------------------------------------------------

def tree_state(top: str | os.PathLike[str]) -> dict[str, tuple]:
    """Every entry of the tree ``top`` ("" for ``top`` itself), by relative path: its mode, owner,
    size, mtime, ctime, inode, link count, device and symlink target. Anything done to an entry
    (written, created, removed, renamed, chmod-ed, chown-ed, xattrs or times set) changes its
    ctime, so two states taken before and after (see :func:`wait_past`) differ where it was."""
    top = os.fspath(top)
    state = {"": _facts(os.lstat(top), None)}
    folders = [""]
    while folders:
        rel = folders.pop()
        with os.scandir(os.path.join(top, rel) if rel else top) as listing:
            for entry in listing:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                state[path] = _facts(st, os.readlink(entry.path) if stat.S_ISLNK(st.st_mode) else None)
                if stat.S_ISDIR(st.st_mode):
                    folders.append(path)
    return state


def _facts(st: os.stat_result, target: str | None) -> tuple:
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
            st.st_nlink, st.st_rdev, target)


def _as_copied(state: dict[str, tuple]) -> dict[str, tuple]:
    """What a faithful copy shares with its source: not ctime, inode or a directory's size."""
    return {path: (f[0], f[1], f[2], None if stat.S_ISDIR(f[0]) else f[3], f[4], f[8], f[9])
            for path, f in state.items()}


def wait_past(state: dict[str, tuple]) -> None:
    """Return once the file system clock has moved past every ctime in ``state``, so that any
    change made from now on shows in a later :func:`tree_state`. File times come from a coarse
    clock (one tick, 1–10 ms, behind the precise one) unless the kernel made one precise: past
    the newest ctime by a tick of the coarse clock, every later change has a later ctime."""
    newest = max(f[5] for f in state.values())
    try:
        tick = int(time.clock_getres(_COARSE_CLOCK) * 1e9) if _COARSE_CLOCK is not None else 20_000_000
    except OSError:
        tick = 20_000_000
    deadline = time.monotonic() + 1.0
    while time.time_ns() - tick <= newest:
        if time.monotonic() > deadline:  # the clock was set back: waiting would not help
            return
        time.sleep(0.001)


#: Linux's CLOCK_REALTIME_COARSE (not exported by Python's ``time``), the clock of file times.
_COARSE_CLOCK = 5 if sys.platform.startswith("linux") else None


def restore_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str], before: dict[str, tuple],
                 source: dict[str, tuple]) -> dict[str, tuple] | None:
    """Put ``dst``, a copy of ``src`` whose :func:`tree_state` was ``before``, back as it was
    copied: only what changed since is removed and copied again, and each directory around it
    gets its mode, times and xattrs back. ``source`` is ``src``'s state (``src`` never changes).

    Returns the copy's new state, or ``None`` when it cannot be put back and proven equal to
    ``src`` entry by entry (then the caller removes it and copies afresh)."""
    src, dst = os.fspath(src), os.fspath(dst)
    try:
        after = tree_state(dst)
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        if not changed:
            return after if _as_copied(after) == _as_copied(source) else None
        again: list[str] = []  # entries to remove and copy from src again
        folders: set[str] = set()  # directories whose own mode, times and xattrs go back
        for path in changed:  # a parent sorts before its children
            if any(path.startswith(f"{p}/") for p in again):
                continue  # inside something copied again whole
            was, now, orig = before.get(path), after.get(path), source.get(path)
            if orig is not None and not stat.S_ISDIR(orig[0]) and orig[7] > 1:
                return None  # one of several hard links: only a whole copy keeps them linked
            if was is not None and now is not None and stat.S_ISDIR(was[0]) and stat.S_ISDIR(now[0]) and path in source:
                folders.add(path)  # its listing or its own attributes: what changed inside is handled one by one
            else:
                again.append(path)
        for path in again:
            remove_tree(os.path.join(dst, path))
            if path in source:
                _copy_entry(src, dst, path)
            folders.add(os.path.dirname(path))
        for path in sorted(folders, key=lambda p: p.count("/") + bool(p), reverse=True):
            _copy_folder_attributes(os.path.join(src, path) if path else src, os.path.join(dst, path) if path else dst)
        state = tree_state(dst)
    except OSError:
        return None
    return state if _as_copied(state) == _as_copied(source) else None


def _copy_entry(src: str, dst: str, path: str) -> None:
    """Copy the entry ``path`` of ``src`` (a whole directory, or one file, link or device) into ``dst``."""
    if stat.S_ISDIR(os.lstat(os.path.join(src, path)).st_mode):
        copy_tree(os.path.join(src, path), os.path.join(dst, path))
        return
    parent, name = os.path.split(path)
    s = os.open(os.path.join(src, parent) if parent else src, _DIR & ~_O_NOFOLLOW)
    try:
        d = os.open(os.path.join(dst, parent) if parent else dst, _DIR & ~_O_NOFOLLOW)
        try:
            copier = _Copier(src, dst)
            copier.rel = [p for p in parent.split("/") if p]
            copier._entry(name, os.stat(name, dir_fd=s, follow_symlinks=False), s, d)
        finally:
            os.close(d)
    finally:
        os.close(s)


def _copy_folder_attributes(src: str, dst: str) -> None:
    """``dst`` gets ``src``'s xattrs (exactly those), owner, mode and times."""
    s, d = os.open(src, _DIR & ~_O_NOFOLLOW), os.open(dst, _DIR & ~_O_NOFOLLOW)
    try:
        if hasattr(os, "listxattr"):
            keep = set(os.listxattr(s))
            for name in set(os.listxattr(d)) - keep:
                os.removexattr(d, name)
        _Copier(src, dst)._finish_dir(s, d, os.fstat(s))
    finally:
        os.close(s)
        os.close(d)
