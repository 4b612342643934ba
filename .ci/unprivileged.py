"""Checks of the unprivileged CI step (.ci/steps/40-unprivileged.sh), run as that user in its clone.

    python3 .ci/unprivileged.py labs     every lab of labs/info.toml at full points from solutions/
    python3 .ci/unprivileged.py grade    dockerlab grade on perfect, blank and half: the totals
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

LABS = tomllib.loads(Path("labs/info.toml").read_text())["labs"]
POINTS = {lab["id"]: sum(t["points"] for t in lab["tasks"]) for lab in LABS}


def solve(labs_dir: Path, lab_ids: list[str]) -> None:
    """Put the reference solutions of ``lab_ids`` over the stubs in ``labs_dir``."""
    for lab in lab_ids:
        shutil.copytree(Path("solutions") / lab, labs_dir / lab, dirs_exist_ok=True)


def labs() -> None:
    assert LABS, "labs/info.toml lists no labs"
    keep = Path(tempfile.mkdtemp(prefix="stubs-"))
    shutil.copytree("labs", keep / "labs")
    try:
        solve(Path("labs"), list(POINTS))
        for lab in LABS:
            n, total = len(lab["tasks"]), POINTS[lab["id"]]
            want = f"{n}/{n} tasks done, {total}/{total} points"
            run = subprocess.run(["tox", "-e", lab["id"]], capture_output=True, text=True)
            out = run.stdout + run.stderr
            line = next((x for x in out.splitlines() if x.startswith(lab["id"] + " ")), None)
            print(f"tox -e {lab['id']}: {line}")
            if run.returncode != 0 or line is None or want not in line:
                sys.exit(f"tox -e {lab['id']} on the solutions: expected exit 0 and {want!r}; "
                         f"got exit {run.returncode}\n{out[-4000:]}")
    finally:
        shutil.rmtree("labs")
        shutil.copytree(keep / "labs", "labs")
        shutil.rmtree(keep)


def grade() -> None:
    home = Path.home()
    klass, out = home / "class", home / "grades"
    for p in (klass, out):
        shutil.rmtree(p, ignore_errors=True)
    first = LABS[0]["id"]
    solved = {"perfect": list(POINTS), "blank": [], "half": [first]}
    for student, lab_ids in solved.items():
        shutil.copytree("labs", klass / student / "labs")
        solve(klass / student / "labs", lab_ids)
    env = {**os.environ, "DOCKERLAB_SECRET": "ci-unprivileged"}
    cmd = ["dockerlab", "grade", str(klass), "--out", str(out), "--labs", ",".join(POINTS), "--jobs", "2", "--no-progress"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, env=env, check=True)
    full = sum(POINTS.values())
    want = {s: (float(sum(POINTS[x] for x in ids)), float(full)) for s, ids in solved.items()}
    with open(out / "grades.csv", newline="") as fh:
        got = {r["student"]: (float(r["total"]), float(r["max"])) for r in csv.DictReader(fh)}
    print(f"grades.csv totals: {got}")
    if got != want:
        sys.exit(f"dockerlab grade: expected totals {want}, got {got}")


if __name__ == "__main__":
    {"labs": labs, "grade": grade}[sys.argv[1]]()
