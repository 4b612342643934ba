"""Benchmark: CPU a grader spends on one submission's hidden trees, vs. copying the same trees.

``python benchmarks/hidden_trees.py [--n 20]``. Like ``dockerlab grade``: a warm parent builds the
canonical roots, then forks one child per submission; each child builds the root kinds a lab's
tests use (``graded_root``) on a fresh seed, into a cache on /dev/shm when there is one. The floor
is what copying those finished trees costs (``trees.copy_tree``, like ``cp -a``): the ratio says how
far building them is from only writing them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LABS = {
    "lab1": ["full", "other-host", "other-content", "small"],
    "lab2": ["full", "small", "small-with-containers"],
    "lab3": ["full", "containerd"],
}


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _in_child(kinds: list[str], seed: int, scratch: Path) -> tuple[float, float]:
    """CPU seconds to build ``kinds`` for ``seed`` in a forked child, and to copy what it built."""
    from fakeroot_builder.cache import graded_root
    from fakeroot_builder.trees import copy_tree

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            start = _cpu()
            roots = [graded_root(kind, seed) for kind in kinds]
            built = _cpu()
            for i, root in enumerate(roots):
                copy_tree(root.path, scratch / f"{seed}-{i}")
            os.write(write, repr((built - start, _cpu() - built)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        build, copy = (float(x) for x in pipe.read().strip("()").split(","))
    os.waitpid(pid, 0)
    return build, copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions (fresh seeds) per lab")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix="dockerlab-hidden-", dir=shm))
    os.environ["DOCKERLAB_CACHE"] = str(base / "cache")
    (base / "copies").mkdir()
    try:
        from fakeroot_builder.cache import graded_root
        from fakeroot_builder.plan import CANONICAL_SEED

        for kind in ("full", "other-host", "other-content", "containerd"):  # what the grader shares
            graded_root(kind, CANONICAL_SEED)
        for number, (lab, kinds) in enumerate(LABS.items()):
            seeds = [10_000_000 + 1000 * i + 100 * number for i in range(args.n)]  # fresh for each lab
            runs = [_in_child(kinds, seed, base / "copies") for seed in seeds]
            build = sorted(b for b, _ in runs)[len(runs) // 2]
            copy = sorted(c for _, c in runs)[len(runs) // 2]
            print(f"{lab} hidden trees ({', '.join(kinds)}): {build:.3f} s CPU per submission, "
                  f"copying them {copy:.3f} s (medians of {len(runs)}): ratio {build / max(copy, 1e-3):.1f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
