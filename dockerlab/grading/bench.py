"""Benchmark: grading N submissions with ``dockerlab grade`` vs. one ``tox -e lab1`` per submission.

``python -c "from dockerlab.grading.bench import main; main()" --n 100`` (``benchmarks/run.py``
calls :func:`main`). Half the class is perfect, half blank. The other side is what a student
runs: ``tox -e lab1`` on their own code and seed, warm (its second run), for ``--tox-sample``
submissions, extrapolated to N.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from dockerlab.labinfo import repo_root

__all__ = ["main"]


def _make_class(base: Path, n: int) -> Path:
    repo = repo_root()
    class_dir = base / "class"
    for i in range(n):
        source = repo / ("solutions" if i % 2 == 0 else "labs")
        shutil.copytree(source, class_dir / f"s{i:03d}" / "labs", ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    return class_dir


class _CpuMeter:
    """CPU seconds of this process and everything it starts, bubblewrap's sandboxes included
    (their processes are reaped inside their own pid namespace, so ``getrusage`` never sees
    them): a cpuacct cgroup (v1) or a cgroup (v2) of its own where this user may make one,
    else the whole machine's busy time from ``/proc/stat`` (then other processes count too)."""

    def __init__(self) -> None:
        from .cgroup import own_cgroup

        self.group: Path | None = None
        self.home: Path | None = None
        self.how = "the whole machine's busy time (no cgroup of our own here)"
        found = own_cgroup("cpuacct")
        if isinstance(found, str):
            return
        version, home = found
        self.stat_file = "cpuacct.usage" if version == 1 else "cpu.stat"
        group = home / f"dockerlab-bench-{os.getpid()}"
        try:
            group.mkdir()
        except OSError:
            return
        try:
            (group / "cgroup.procs").write_text(str(os.getpid()))
            self._read(group / self.stat_file)
        except OSError:
            group.rmdir()
            return
        self.group, self.home = group, home
        self.how = "a cgroup of its own: this run's processes only"

    def _read(self, path: Path) -> float:
        text = path.read_text()
        if path.name == "cpuacct.usage":
            return int(text) / 1e9
        return int(text.split("usage_usec")[1].split()[0]) / 1e6

    def now(self) -> float:
        if self.group is not None:
            return self._read(self.group / self.stat_file)
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = sum(int(x) for i, x in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
        return ticks / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.group is not None and self.home is not None:
            try:
                (self.home / "cgroup.procs").write_text(str(os.getpid()))
                self.group.rmdir()
            except OSError:
                pass
            self.group = None


def _tox_runs(class_dir: Path, sample: int, cache: Path, meter: _CpuMeter) -> tuple[float, float, str]:
    """Wall and CPU seconds of a student's own warm ``tox -e lab1`` (their code, their seed), the
    mean over the first ``sample`` students (perfect and blank in turn, as in the class); without
    tox, ``pytest tests/test_lab1.py`` in a fresh process instead (leaving out tox's own start)."""
    repo = repo_root()
    students = sorted(class_dir.iterdir())[:max(sample, 1)]
    tox = shutil.which("tox")
    times, cpus = [], []
    for folder in students:
        course = cache.parent / f"course-{folder.name}"  # the student's clone: their labs/ and the course's info.toml
        shutil.copytree(folder / "labs", course / "labs")
        shutil.copy(repo / "labs" / "info.toml", course / "labs" / "info.toml")
        env = dict(os.environ, DOCKERLAB_CACHE=str(cache), DOCKERLAB_STUDENT_ID=folder.name,
                   DOCKERLAB_REPO=str(course))  # tox -e lab1 grades DOCKERLAB_REPO's labs/, as on the student's laptop
        if tox:
            argv = [tox, "-e", "lab1"]
        else:
            argv = [sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", "labs", "-q", "--no-header",
                    "-p", "no:cacheprovider"]
        for timed in (False, True):  # the first run builds the student's own trees: warm, as a student's loop is
            start, cpu = time.perf_counter(), meter.now()
            subprocess.run(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if timed:
                times.append(time.perf_counter() - start)
                cpus.append(meter.now() - cpu)
    how = "tox -e lab1, warm" if tox else "pytest tests/test_lab1.py in a fresh process (no tox here)"
    # the mean: the sample alternates perfect and blank students, as the class does
    return sum(times) / len(times), sum(cpus) / len(cpus), how


def main(argv: Sequence[str] | None = None) -> int:
    """Print the wall time of both ways and their ratio; returns 0."""
    from . import grader
    from .grader import Timeouts, grade_class

    parser = argparse.ArgumentParser(prog="bench-grading", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions to grade (default 100)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel submissions (default: CPU count)")
    parser.add_argument("--tox-sample", type=int, default=4, help="submissions timed the tox way (default 4)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dockerlab-bench-") as tmp:
        base = Path(tmp)
        class_dir = _make_class(base, args.n)
        meter = _CpuMeter()
        try:
            start, cpu = time.perf_counter(), meter.now()
            results = grade_class(class_dir, base / "out", "bench-secret", ["lab1"], args.jobs, Timeouts(),
                                  progress=sys.stderr.isatty())
            graded, graded_cpu = time.perf_counter() - start, meter.now() - cpu
            timings = dict(grader.TIMINGS)
            load_after = os.getloadavg()
            wrong = [r.student for i, r in enumerate(sorted(results, key=lambda r: r.student))
                     if r.total != (r.max if i % 2 == 0 else 0)]
            per_tox, per_tox_cpu, how = _tox_runs(class_dir, args.tox_sample, base / "tox-cache", meter)
        finally:
            meter.close()  # also when grading failed: no cgroup left behind
    cores = args.jobs or os.cpu_count() or 1
    print(f"grading {args.n} submissions (lab1, {cores} jobs): {graded:.1f} s wall, "
          f"{graded / args.n:.2f} s per submission{'' if not wrong else f'  WRONG SCORES: {wrong[:5]}'}")
    print(f"tox -e lab1 per submission ({how}, mean of {args.tox_sample} students, perfect and blank): {per_tox:.2f} s, "
          f"{per_tox * args.n:.1f} s for {args.n} (extrapolated)")
    print(f"ratio: grading is {per_tox * args.n / graded:.1f}x faster than tox per submission")
    idle = graded_cpu / args.n / min(cores, os.cpu_count() or 1)  # wall per submission with every core free
    print(f"CPU seconds per submission (measured with {meter.how}): grading {graded_cpu / args.n:.2f} s, "
          f"tox -e lab1 {per_tox_cpu:.2f} s; on {cores} idle cores that is {idle:.2f} s wall per submission, "
          f"{idle * args.n:.0f} s for {args.n}, {per_tox_cpu / idle:.1f}x faster than tox per submission")
    n = max(args.n, 1)
    hidden, pytest_s = timings.get("hidden_trees", 0.0), timings.get("pytest", 0.0)
    copies = timings.get("damaged_copies", 0.0)
    starts, start_s = timings.get("worker_starts", 0.0), timings.get("worker_start_seconds", 0.0)
    print(f"where the time goes (CPU-parallel seconds per submission): hidden-tree builds {hidden / n:.2f} s, "
          f"copies to damage {copies / n:.2f} s, "
          f"sandbox start {start_s / n:.2f} s ({starts / n:.1f} workers of {start_s / max(starts, 1) * 1000:.0f} ms), "
          f"tests {max(pytest_s - start_s - copies, 0.0) / n:.2f} s; shared trees once {timings.get('shared_trees', 0.0):.1f} s")
    joins = timings.get("cgroup_join_seconds", 0.0)
    print(f"memory budget: a cgroup, joined in {joins / max(starts, 1) * 1000:.1f} ms per worker start" if joins
          else "memory budget: RLIMIT_AS (no memory cgroup here)")
    print(f"load average (1 min) before/after grading: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
