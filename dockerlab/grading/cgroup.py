"""A memory cgroup per submission, where the machine offers one (else RLIMIT_AS stays the budget).

The grader makes one *run* cgroup below its own (``/proc/self/cgroup``) and one child per
submission, limited to the submission's memory budget (``$DOCKERLAB_SANDBOX_MEM``, 1 GiB): all
the processes of its worker together (bubblewrap and Python), page cache and kernel memory
included, and no swap (v1: ``memory.memsw``; v2: ``memory.swap.max`` 0). Only workers join it,
never the grader's own processes. A worker joins before it is sent its options, i.e. before
any student code runs: :func:`join` moves the worker, then each of its descendants, top down
(a fork and a move never interleave in the kernel, so a child is either seen or born inside).

cgroup v2: the grader's cgroup must offer ``memory`` and be writable (a delegated subtree). By
v2's "no internal processes" rule, enabling ``memory`` for children needs a cgroup without
processes: when the grader is alone in its cgroup it moves itself into a leaf
(``dockerlab-grader-<pid>``) first, and back at the end. cgroup v1: the ``memory`` hierarchy,
writable (root). Otherwise (an ordinary user without delegation, macOS) :meth:`RunGroup.create`
says why and grading keeps RLIMIT_AS per worker. ``DOCKERLAB_CGROUP=off`` forces the fallback.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import time
from pathlib import Path

__all__ = ["Group", "RunGroup", "budget", "join"]

#: Environment of a grading child: the cgroup its workers join (the worker's own environment is empty).
ENV = "_DOCKERLAB_CGROUP"
_PREFIX = "dockerlab-"


def budget() -> int:
    """Bytes of memory per submission (``$DOCKERLAB_SANDBOX_MEM``, default 1 GiB)."""
    return int(os.environ.get("DOCKERLAB_SANDBOX_MEM", 1 << 30))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:  # one write(2): the kernel reads one value per write
        fh.write(value)


def _mounts(mountinfo: str) -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
    """v1 controllers -> (mount root, mount point), and the v2 (mount root, mount point)."""
    v1: dict[str, tuple[str, str]] = {}
    v2 = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point = (f.replace("\\040", " ") for f in fields[3:5])
        if tail[0] == "cgroup2" and v2 is None:
            v2 = (root, point)
        elif tail[0] == "cgroup":
            for opt in tail[2].split(","):
                v1.setdefault(opt, (root, point))
    return v1, v2


def _under_mount(mount: tuple[str, str], path: str) -> Path | None:
    """The directory of cgroup ``path`` (as /proc/self/cgroup names it) in a mount of its hierarchy."""
    root, point = mount
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None
    rel = path[len(root):] if root != "/" else path
    return Path(point) / rel.lstrip("/")


def own_cgroup(controller: str = "memory", proc: Path = Path("/proc")) -> tuple[int, Path] | str:
    """(version, directory) of this process's cgroup for ``controller``, or why there is none."""
    return _own(proc, _read(proc / "self" / "mountinfo"), controller)


def _own(proc: Path, mountinfo: str, controller: str = "memory") -> tuple[int, Path] | str:
    """(version, directory) of this process's ``controller`` cgroup (v1's hierarchy of it, else
    v2's, which must offer it; v2 counts CPU time, ``cpuacct``, in every cgroup), or why there is
    none to use."""
    lines = _read(proc / "self" / "cgroup").splitlines()
    if not lines:
        return "no /proc/self/cgroup (not Linux)"
    v1, v2 = _mounts(mountinfo)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") and controller in v1:
            where = _under_mount(v1[controller], path)
            return (1, where) if where is not None and where.is_dir() else f"the {controller} cgroup's folder is not mounted here"
    for line in lines:
        if line.startswith("0::") and v2 is not None:
            where = _under_mount(v2, line[3:])
            if where is None or not where.is_dir():
                return "the cgroup v2 folder of this process is not mounted here"
            if controller != "cpuacct" and controller not in _read(where / "cgroup.controllers").split():
                return f"cgroup v2 without the {controller} controller here"
            return 2, where
    return f"no {controller} controller mounted"


class Group:
    """One submission's cgroup (either version): limit, join, kill, out-of-memory count, remove."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.version = 2 if (self.path / "memory.max").exists() else 1

    def limit(self, limit: int) -> None:
        if self.version == 2:
            _write(self.path / "memory.max", str(limit))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if (self.path / name).exists():
                    _write(self.path / name, value)  # no swap; an OOM kill takes the whole worker
        else:
            _write(self.path / "memory.limit_in_bytes", str(limit))
            if (self.path / "memory.memsw.limit_in_bytes").exists():  # memory + swap: swap does not dodge it
                _write(self.path / "memory.memsw.limit_in_bytes", str(limit))

    def pids(self) -> list[int]:
        return [int(p) for p in _read(self.path / "cgroup.procs").split()]

    def add(self, pid: int) -> None:
        """Move ``pid`` and all its descendants here, each before its own children are looked at."""
        todo = [pid]
        while todo:
            pid = todo.pop()
            try:
                _write(self.path / "cgroup.procs", str(pid))
            except ProcessLookupError:
                continue  # it ended: nothing of it is left to charge
            for task in _tasks(pid):
                todo += [int(c) for c in _read(Path(f"/proc/{pid}/task/{task}/children")).split()]

    def oom_kills(self) -> int:
        """Processes the kernel killed here for memory (v1 without the count: times the limit was hit)."""
        counts = _counts(_read(self.path / ("memory.events" if self.version == 2 else "memory.oom_control")))
        if "oom_kill" in counts:
            return counts["oom_kill"]
        return int(_read(self.path / "memory.failcnt").strip() or 0) if self.version == 1 else 0

    def kill(self, wait: float = 2.0) -> bool:
        """SIGKILL every process here; True once none is left (reaped or not, they are gone from here)."""
        if self.version == 2 and (self.path / "cgroup.kill").exists():
            try:
                _write(self.path / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while True:
            left = self.pids()
            if not left or time.monotonic() > deadline:
                return not left
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self) -> bool:
        """Kill what is left and remove the cgroup; True when it is gone."""
        self.kill()
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return False
                self.kill(0.1)  # an exiting process still counted: a moment more
                time.sleep(0.02)
        return False


def _counts(text: str) -> dict[str, int]:
    """``name value`` lines (memory.events, memory.oom_control)."""
    pairs = (line.split() for line in text.splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


class RunGroup:
    """The grading run's cgroup, parent of one :class:`Group` per submission."""

    def __init__(self, version: int, own: Path, path: Path, limit: int, leaf: Path | None, enabled: bool) -> None:
        self.version, self.own, self.path, self.limit = version, own, path, limit
        self._leaf = leaf  # v2: the grader moved itself here to free its own cgroup of processes
        self._enabled = enabled  # v2: we turned memory on in own/cgroup.subtree_control
        self._groups: list[Group] = []

    @property
    def kind(self) -> str:
        return f"cgroup v{self.version}"

    @classmethod
    def create(cls, limit: int | None = None, proc: Path = Path("/proc")) -> "RunGroup | str":
        """A run cgroup where one can be made here, else why not (the grader then keeps RLIMIT_AS)."""
        limit = budget() if limit is None else limit
        if os.environ.get("DOCKERLAB_CGROUP", "").lower() in ("off", "0", "no"):
            return "DOCKERLAB_CGROUP=off"
        try:
            found = own_cgroup("memory", proc)
            if isinstance(found, str):
                return found
            version, own = found
            if not os.access(own, os.W_OK):
                return f"{own} is not writable (not root, no delegated cgroup)"
            _sweep(own)
            return cls._v2(own, limit) if version == 2 else cls._make(1, own, limit, None, False)
        except OSError as exc:
            return f"the memory cgroup could not be set up ({exc.strerror or exc})"

    @classmethod
    def _v2(cls, own: Path, limit: int) -> "RunGroup | str":
        leaf, enabled = None, False
        if "memory" not in _read(own / "cgroup.subtree_control").split():
            others = [p for p in _read(own / "cgroup.procs").split() if int(p) != os.getpid()]
            if others:
                return f"{own} holds other processes, so cgroup v2 cannot give it children with a memory limit"
            leaf = own / f"{_PREFIX}grader-{os.getpid()}"
            leaf.mkdir()
            try:
                _write(leaf / "cgroup.procs", str(os.getpid()))
                _write(own / "cgroup.subtree_control", "+memory")
                enabled = True
            except OSError:
                _undo_leaf(own, leaf)
                raise
        try:
            return cls._make(2, own, limit, leaf, enabled)
        except OSError:
            RunGroup(2, own, own / "missing", limit, leaf, enabled).close()
            raise

    @classmethod
    def _make(cls, version: int, own: Path, limit: int, leaf: Path | None, enabled: bool) -> "RunGroup":
        path = own / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir()
        run = cls(version, own, path, limit, leaf, enabled)
        try:
            if version == 2:
                _write(path / "cgroup.subtree_control", "+memory")
            run.submission("probe").remove()  # a limit can really be set: else fall back now, not mid-run
        except OSError:
            run.close()
            raise
        return run

    def submission(self, name: str) -> Group:
        """A new cgroup for one submission, limited to the budget."""
        path = self.path / name
        path.mkdir()
        group = Group(path)
        self._groups.append(group)
        try:
            group.limit(self.limit)
        except OSError:
            group.remove()
            raise
        return group

    def close(self) -> None:
        """Kill and remove every submission cgroup and the run's own (also after a stopped run)."""
        for group in self._groups:
            group.remove()
        if self.path.is_dir():
            for child in self.path.iterdir():  # one made but not recorded (a stop at the wrong moment)
                if child.is_dir():
                    Group(child).remove()
            Group(self.path).remove()
        if self._enabled:
            try:
                _write(self.own / "cgroup.subtree_control", "-memory")
            except OSError:
                pass
        if self._leaf is not None:
            _undo_leaf(self.own, self._leaf)


def _undo_leaf(own: Path, leaf: Path) -> None:
    try:
        _write(own / "cgroup.procs", str(os.getpid()))
        os.rmdir(leaf)
    except OSError:
        pass


def _sweep(own: Path) -> None:
    """Remove empty run cgroups left by a grader that was killed outright (SIGKILL)."""
    for entry in own.glob(f"{_PREFIX}*"):
        pid = entry.name[len(_PREFIX):].split("-")[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in [c for c in entry.iterdir() if c.is_dir()] + [entry]:
            try:
                os.rmdir(child)  # never kills: only what holds no process goes
            except OSError:
                pass


def join(pid: int) -> Group | None:
    """Put worker ``pid`` (and its children) into this grading child's submission cgroup, if any.

    Returns the group, or None when there is none or joining failed (the worker then keeps its
    RLIMIT_AS as the budget).
    """
    where = os.environ.get(ENV)
    if not where:
        return None
    group = Group(where)
    try:
        group.add(pid)
    except OSError:
        return None
    return group
