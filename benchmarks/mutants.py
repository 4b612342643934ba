"""Mutation testing of the reference solutions against the graded tests: ``tox -e mutants``.

Runs ``mutmut run`` (configured in ``pyproject.toml``: ``solutions/`` mutated, ``tests/test_lab1.py``
and ``tests/test_lab2.py`` as the killers), then prints the kill figure. A surviving mutant must be
listed in ``benchmarks/equivalent_mutants.toml`` with the reason it cannot be told apart from the
solution; the run fails on any other survivor, on a listed mutant that no longer survives (the
list must stay true), and when the score (killed / (all - equivalent)) is below 95%.

``python benchmarks/mutants.py --report`` prints the figure of the last run without running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EQUIVALENT = Path(__file__).with_name("equivalent_mutants.toml")
TARGET = 0.95

# mutmut 3's exit codes per mutant (mutmut.stats.status_by_exit_code)
_STATUS = {0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests", 34: "skipped",
           36: "timeout", 37: "caught by type check", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout"}


def results() -> dict[str, str]:
    """Every mutant of the last run and its status."""
    out: dict[str, str] = {}
    for meta in sorted((REPO / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            out[name] = "not checked" if code is None else _STATUS.get(code, "suspicious")
    return out


def equivalents() -> dict[str, str]:
    """Mutant name → why it is equivalent."""
    if not EQUIVALENT.exists():
        return {}
    return {m["name"]: m["why"] for m in tomllib.loads(EQUIVALENT.read_text())["mutant"]}


def report() -> int:
    status = results()
    if not status:
        print("no mutmut results: run `tox -e mutants` first", file=sys.stderr)
        return 2
    known = equivalents()
    counts = Counter(status.values())
    survivors = sorted(n for n, s in status.items() if s not in ("killed", "timeout"))
    unexplained = [n for n in survivors if n not in known]
    stale = sorted(n for n in known if status.get(n) in ("killed", "timeout", None))
    # a timeout is a kill: the mutant made a graded test hang (e.g. a parent walk that never ends)
    killed = counts["killed"] + counts["timeout"]
    candidates = len(status) - len([n for n in survivors if n in known])
    score = killed / candidates if candidates else 0.0
    print(f"mutants: {len(status)}  killed: {counts['killed']}  timeout (killed): {counts['timeout']}  "
          f"equivalent: {len(survivors) - len(unexplained)}  surviving: {len(unexplained)}")
    print(f"mutation score: {killed}/{candidates} = {score:.1%} (target {TARGET:.0%}; equivalent mutants excluded)")
    print(f"killed of all mutants: {killed}/{len(status)} = {killed / len(status):.1%}")
    for name in unexplained:
        print(f"  survived, not listed as equivalent: {name}   (mutmut show {name})")
    for name in stale:
        print(f"  listed as equivalent but killed or gone: {name}")
    return 0 if score >= TARGET and not unexplained and not stale else 1


def main(argv: list[str]) -> int:
    if "--report" not in argv:
        subprocess.run([sys.executable, "-m", "mutmut", "run", *argv], cwd=REPO, check=False)
    return report()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
