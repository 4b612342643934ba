"""Benchmark: grading N submissions with ``dockerlab grade`` vs. one ``tox -e lab1`` per submission.

``python -c "from dockerlab.grading.bench import main; main()" --n 100`` (``benchmarks/run.py``
calls :func:`main`). Half the class is perfect, half blank. The tox side runs what ``tox -e lab1``
runs (``python -m pytest tests/test_lab1.py --impl <dir>``, in a fresh interpreter, on the
student's own seed) for ``--tox-sample`` submissions and extrapolates to N; tox's own
environment check would only add to it.
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


def _tox_like(class_dir: Path, sample: int, cache: Path) -> float:
    """Seconds per submission of ``pytest tests/test_lab1.py --impl <dir>`` in a fresh process each."""
    repo = repo_root()
    students = sorted(class_dir.iterdir())[: sample + 1]
    start = time.perf_counter()
    for i, folder in enumerate(students):
        if i == 1:  # the first run only fills the shared cache (canonical and seed-7 trees)
            start = time.perf_counter()
        env = dict(os.environ, DOCKERLAB_CACHE=str(cache), DOCKERLAB_STUDENT_ID=folder.name)
        subprocess.run([sys.executable, "-m", "pytest", "tests/test_lab1.py", "--impl", str(folder), "-q",
                        "--no-header", "-p", "no:cacheprovider"],
                       cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - start) / max(len(students) - 1, 1)


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
        start = time.perf_counter()
        results = grade_class(class_dir, base / "out", "bench-secret", ["lab1"], args.jobs, Timeouts(),
                              progress=sys.stderr.isatty())
        graded = time.perf_counter() - start
        timings = dict(grader.TIMINGS)
        load_after = os.getloadavg()
        wrong = [r.student for i, r in enumerate(sorted(results, key=lambda r: r.student))
                 if r.total != (r.max if i % 2 == 0 else 0)]
        per_tox = _tox_like(class_dir, args.tox_sample, base / "tox-cache")
    cores = args.jobs or os.cpu_count() or 1
    print(f"grading {args.n} submissions (lab1, {cores} jobs): {graded:.1f} s wall, "
          f"{graded / args.n:.2f} s per submission{'' if not wrong else f'  WRONG SCORES: {wrong[:5]}'}")
    print(f"tox -e lab1 per submission (pytest in a fresh process, {args.tox_sample} timed): {per_tox:.2f} s, "
          f"{per_tox * args.n:.1f} s for {args.n} (extrapolated)")
    print(f"ratio: grading is {per_tox * args.n / graded:.1f}x faster than tox per submission")
    n = max(args.n, 1)
    hidden, pytest_s = timings.get("hidden_trees", 0.0), timings.get("pytest", 0.0)
    starts, start_s = timings.get("worker_starts", 0.0), timings.get("worker_start_seconds", 0.0)
    print(f"where the time goes (CPU-parallel seconds per submission): hidden-tree builds {hidden / n:.2f} s, "
          f"sandbox start {start_s / n:.2f} s ({starts / n:.1f} workers of {start_s / max(starts, 1) * 1000:.0f} ms), "
          f"tests {max(pytest_s - start_s, 0.0) / n:.2f} s; shared trees once {timings.get('shared_trees', 0.0):.1f} s")
    joins = timings.get("cgroup_join_seconds", 0.0)
    print(f"memory budget: a cgroup, joined in {joins / max(starts, 1) * 1000:.1f} ms per worker start" if joins
          else "memory budget: RLIMIT_AS (no memory cgroup here)")
    print(f"load average (1 min) before/after grading: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
