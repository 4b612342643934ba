"""Benchmarks that print ratios (no timed tests): run with ``tox -e bench`` or ``python benchmarks/run.py``.

1. building the default root vs. ``python3 -m tarfile -e`` extracting the identical tree (aim ≤ 2×)
2. building the canonical root into pyfakefs (aim ≤ 0.25 s)
3. ``tox -e lab1`` warm vs. tox running one trivial test in the same env (aim ≤ 1.2×)
   and ``dockerlab watch``: save → result
4. grading 100 submissions vs. ``tox -e lab1`` per submission (aim ≤ 1 s each, ≥ 5× faster)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_build(work: Path) -> None:
    from fakeroot_builder.build import plan_root
    from fakeroot_builder.writer import write_plan

    counter = iter(range(1000))

    def build() -> None:
        write_plan(plan_root(seed=2023), work / f"root{next(counter)}")

    build_time = _best(build)
    archive = work / "same-tree.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(work / "root0", arcname="root")

    def extract() -> None:
        target = work / f"x{next(counter)}"
        subprocess.run([sys.executable, "-m", "tarfile", "-e", str(archive), str(target)], check=True)

    floor = _best(extract)
    print(f"build default root:     {build_time:.3f} s   (plan + write, real directory)")
    print(f"tarfile -e same tree:   {floor:.3f} s   (python3 -m tarfile -e, the floor)")
    print(f"ratio build / floor:    {build_time / floor:.2f}x   (aim <= 2x)")
    ctd_time = bench_containerd_store(work, build_time)
    bench_bbolt(work / "ctd0", ctd_time)


def _du(path: Path) -> int:
    """Bytes allocated under ``path`` (``du -s``), hard links once."""
    seen, total = set(), 0
    for top, dirs, files in os.walk(path):
        for name in [*dirs, *files, ""]:
            st = os.lstat(os.path.join(top, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def bench_containerd_store(work: Path, classic_time: float) -> float:
    """The same catalogue as Docker 29's containerd root, next to the classic store."""
    from fakeroot_builder.build import plan_root, write_store

    counter = iter(range(1000))
    ctd_time = _best(lambda: write_store(plan_root(seed=2023), work / f"ctd{next(counter)}", "containerd"))
    ctd, classic = _du(work / "ctd0") / 2**20, _du(work / "root0") / 2**20
    print(f"build containerd store: {ctd_time:.3f} s   ({ctd_time / classic_time:.2f}x the classic build; "
          f"{ctd:.1f} MiB on disk vs {classic:.1f} MiB)")
    return ctd_time


def bench_bbolt(root: Path, ctd_time: float) -> None:
    """fakeroot_builder.bbolt on the catalogue's two databases: reading, and writing them anew."""
    from fakeroot_builder import bbolt

    total_read = total_write = 0.0
    for rel in ("io.containerd.metadata.v1.bolt/meta.db", "io.containerd.snapshotter.v1.overlayfs/metadata.db"):
        data = (root / rel).read_bytes()
        tree = bbolt.loads(data)
        read = _best(lambda: bbolt.loads(data), repeat=20)
        write = _best(lambda: bbolt.dumps(tree), repeat=20)
        total_read, total_write = total_read + read, total_write + write
        print(f"bbolt {rel.rsplit('/', 1)[1]:12} {len(data) / 2**10:5.0f} KiB: read {read * 1e3:5.1f} ms "
              f"({len(data) / read / 2**20:.0f} MiB/s), write {write * 1e3:5.1f} ms")
    print(f"bbolt, both databases: read {total_read * 1e3:.1f} ms + write {total_write * 1e3:.1f} ms = "
          f"{(total_read + total_write) / ctd_time:.1%} of the containerd build")


def bench_pyfakefs() -> None:
    from pyfakefs.fake_filesystem_unittest import Patcher

    from fakeroot_builder.build import plan_root
    from fakeroot_builder.pytest_plugin import DATA_ROOT, _clone_into, _write, copy_of

    start = time.perf_counter()
    plan = plan_root(seed=2023)
    plan_time = time.perf_counter() - start
    with Patcher() as patcher:
        start = time.perf_counter()
        built = _write(plan, DATA_ROOT)
        write_time = time.perf_counter() - start
        snapshot = (patcher.fs, copy_of(patcher.fs.get_object(DATA_ROOT), patcher.fs), built)

    def graft() -> None:
        with Patcher() as patcher:
            start = time.perf_counter()
            _clone_into(patcher.fs, snapshot, DATA_ROOT)
            times.append(time.perf_counter() - start)

    times: list[float] = []
    for _ in range(5):
        graft()
    print(f"pyfakefs, first docker_root of a session: plan {plan_time:.3f} s + write {write_time:.3f} s")
    print(f"pyfakefs, every later docker_root:        {min(times):.3f} s   (aim <= 0.25 s)")


def bench_tox() -> None:
    if shutil.which("tox") is None:
        print("tox loop: skipped (tox not installed)")
        return
    with tempfile.TemporaryDirectory(prefix="dockerlab-bench-") as course:
        shutil.copytree(REPO / "labs", Path(course) / "labs", ignore=shutil.ignore_patterns("__pycache__"))
        env = dict(os.environ, DOCKERLAB_REPO=course)  # the stubs, progress saved there, not in the repo
        run = lambda *args: subprocess.run(["tox", *args], cwd=REPO, env=env, capture_output=True)  # noqa: E731
        run("-e", "lab1")  # warm the env and the root cache
        trivial = ("-e", "lab1", "-x", "testenv:lab1.set_env=PYTEST_ADDOPTS=-q",
                   "-x", "testenv:lab1.commands=pytest benchmarks/trivial_test.py")
        labs, floors = [], []
        for _ in range(7):  # interleaved, so that a busy machine slows both alike
            labs.append(_best(lambda: run("-e", "lab1"), repeat=1))
            floors.append(_best(lambda: run(*trivial), repeat=1))
        lab, floor = min(labs), min(floors)
        rebuilt = b".pkg" in run("-e", "lab1").stdout
        shutil.copy(REPO / "solutions" / "lab1" / "layerdb.py", Path(course) / "labs" / "lab1" / "layerdb.py")
        run("-e", "lab1")
        finished = _best(lambda: run("-e", "lab1"), repeat=3)  # every test runs and passes
    print(f"tox -e lab1 (warm, on the stubs):     {lab:.2f} s   (package rebuilt: {'yes' if rebuilt else 'no'})")
    print(f"tox -e lab1, one trivial test:        {floor:.2f} s")
    print(f"ratio warm lab1 / trivial:            {lab / floor:.2f}x   (aim <= 1.2x)")
    print(f"tox -e lab1 with lab 1 solved:        {finished:.2f} s   ({finished / floor:.2f}x trivial; every test runs)")


def bench_watch() -> None:
    """Save -> result in ``dockerlab watch``: a file written under labs/ until the screen is redrawn."""
    with tempfile.TemporaryDirectory(prefix="dockerlab-bench-") as course:
        shutil.copytree(REPO / "labs", Path(course) / "labs", ignore=shutil.ignore_patterns("__pycache__"))
        env = dict(os.environ, DOCKERLAB_REPO=course)
        proc = subprocess.Popen([sys.executable, "-m", "dockerlab", "watch", "lab1", "--plain"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None

        def next_result() -> str:
            screen = []
            for line in proc.stdout:
                if line.startswith("=== result"):
                    return "".join(screen)
                screen.append(line)
            raise RuntimeError("dockerlab watch ended early:\n" + "".join(screen))

        try:
            next_result()  # the first run
            target = Path(course) / "labs" / "lab1" / "layerdb.py"
            stub = target.read_text()
            failing = []
            for i in range(3):  # a save that does not finish the task: the task's tests only
                time.sleep(0.3)
                start = time.perf_counter()
                target.write_text(stub + f"\n# edit {i}\n")
                next_result()
                failing.append(time.perf_counter() - start)
            time.sleep(0.3)
            start = time.perf_counter()
            target.write_text((REPO / "solutions" / "lab1" / "layerdb.py").read_text())
            screen = next_result()  # task passes: its tests, then the whole lab to find the next one
            passing = time.perf_counter() - start
        finally:
            proc.kill()
            proc.wait()
    print(f"watch, save -> result (task still failing): {min(failing):.2f} s best, {sorted(failing)[1]:.2f} s median")
    print(f"watch, save -> result (task passes, lab re-run): {passing:.2f} s   ({'all done' if 'All done' in screen else 'moved on'})")


def bench_grading(n: int) -> None:
    try:
        from dockerlab.grading import bench
    except ImportError:
        print("grading: skipped (dockerlab.grading not available)")
        return
    bench.main(["--n", str(n)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["build", "pyfakefs", "tox", "watch", "grading"], default=None)
    parser.add_argument("--n", type=int, default=100, help="submissions for the grading benchmark")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "build"):
            bench_build(Path(tmp))
        if args.only in (None, "pyfakefs"):
            bench_pyfakefs()
        if args.only in (None, "tox"):
            bench_tox()
        if args.only in (None, "watch"):
            bench_watch()
        if args.only in (None, "grading"):
            bench_grading(args.n)


if __name__ == "__main__":
    main()
