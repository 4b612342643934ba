"""What the platforms do with our files, replayed here: shared by test_platforms.py and CI.

- ``replay_classroom``: run a released repository's ``classroom.yml`` step by step, as the Actions
  runner would (``run:`` steps in bash with ``$GITHUB_OUTPUT``…, ``${{ }}`` expressions evaluated),
  and return what the reporter step is given.
- ``reporter_totals``: decode that as ``classroom-resources/autograding-grading-reporter`` does
  (runner ``r`` → ``$R_RESULTS``, base64 → UTF-8 → JSON) and compute both of its numbers: its
  console table (passed tests / tests × ``max_score`` per runner) and the points it records for
  Classroom (sum of the tests' ``score`` over runners with a ``max_score``).
- ``gradescope_problems``: a results.json held to Gradescope's autograder contract.

As a script (CI): ``python platform_checks.py classroom REPO [--skip-install]`` prints the
reporter's input as JSON; ``python platform_checks.py gradescope RESULTS.json`` checks one file.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["gradescope_problems", "replay_classroom", "reporter_totals"]

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _evaluate(expr: str, context: dict) -> str:
    """The few GitHub expressions the workflow uses: dotted names and ``a || b``."""
    for alternative in (part.strip() for part in expr.split("||")):
        parts = alternative.split(".")
        value = context
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                if parts[0] in ("secrets", "steps") or (parts[0] == "github" and len(parts) == 2):
                    value = ""  # GitHub: a missing secret or output is the empty string
                    break
                raise ValueError(f"the replay does not know the expression {alternative!r}")
            value = value[part]
        if value:
            return str(value)
    return ""


def _substitute(text: str, context: dict) -> str:
    return _EXPR.sub(lambda m: _evaluate(m.group(1), context), str(text))


def _read_outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT``: ``name=value`` lines, or ``name<<DELIM`` … ``DELIM`` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:j])
            i = j + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def replay_classroom(repo: Path, *, secrets: dict[str, str] | None = None, skip: tuple[str, ...] = (),
                     repository: str = "course/lab-assignment-student", timeout: float = 1800,
                     python_bin: Path | None = None) -> dict:
    """Run ``repo``'s workflow as the runner would; returns the reporter step's input.

    ``{"runners": "...", "env": {...}, "log": "..."}``. ``uses:`` steps other than checkout,
    setup-python (``python_bin``, default this Python's bin dir, goes first on ``PATH``) and the
    reporter are refused: the replay must not silently skip work.
    """
    python_bin = Path(python_bin or Path(sys.executable).parent)
    import yaml

    workflow = yaml.safe_load((repo / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8"))
    [job] = workflow["jobs"].values()
    context = {"secrets": dict(secrets or {}), "steps": {},
               "github": {"repository": repository, "actor": "student", "workspace": str(repo)}}
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="classroom-replay-") as temp:
        for number, step in enumerate(job["steps"]):
            name = step.get("name", f"step {number}")
            uses = step.get("uses", "")
            if name in skip:
                log.append(f"--- {name}: skipped by the replay")
                continue
            if uses.startswith(("actions/checkout@", "actions/setup-python@")):
                log.append(f"--- {name}: {uses} (the replay's checkout and Python)")
                continue
            env = {k: _substitute(v, context) for k, v in (step.get("env") or {}).items()}
            if uses.startswith("classroom-resources/autograding-grading-reporter@"):
                return {"runners": _substitute(step["with"]["runners"], context), "env": env,
                        "log": "\n".join(log)}
            if uses or "run" not in step:
                raise ValueError(f"the replay does not know how to run step {name!r} ({uses})")
            output = Path(temp) / f"output-{number}"
            output.touch()
            summary = Path(temp) / f"summary-{number}"
            full_env = {**os.environ, **env, "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '')}", "CI": "true", "GITHUB_ACTIONS": "true",
                        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                        "GITHUB_REPOSITORY": repository, "GITHUB_WORKSPACE": str(repo),
                        "RUNNER_TEMP": temp, "RUNNER_OS": "Linux"}
            script = Path(temp) / f"step-{number}.sh"
            script.write_text(_substitute(step["run"], context), encoding="utf-8")
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=repo,
                                  env=full_env, capture_output=True, text=True, timeout=timeout)
            log.append(f"--- {name} (exit {done.returncode})\n{done.stdout}{done.stderr}")
            if done.returncode != 0:
                raise RuntimeError(f"step {name!r} failed:\n" + "\n".join(log))
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": _read_outputs(output)}
    raise ValueError("the workflow has no autograding-grading-reporter step")


def _strict_json(text: str) -> object:
    def no_constants(name: str) -> object:
        raise ValueError(f"JSON.parse does not accept {name}")

    return json.loads(text, parse_constant=no_constants)


def reporter_totals(runners: str, env: dict[str, str]) -> dict:
    """Both numbers the reporter shows, decoding ``env`` exactly as it does.

    ``table``: its "Test runner summary" total, the sum over runners of
    ``passed tests / tests × max_score``. ``points``/``max_points``: what it records for Classroom,
    the sum of every test's ``score`` and of ``max_score``, over runners that have a ``max_score``.
    """
    table = table_max = points = max_points = 0.0
    statuses = []
    for runner in runners.split(","):
        key = runner.strip().upper() + "_RESULTS"
        if not env.get(key):
            raise ValueError(f"{key} is empty: the reporter fails with 'Unexpected end of JSON input'")
        results = _strict_json(base64.b64decode(env[key], validate=True).decode("utf-8"))
        tests = results["tests"]
        maximum = results.get("max_score") or 0
        table += sum(t["status"] == "pass" for t in tests) / len(tests) * maximum
        table_max += maximum
        if maximum:
            max_points += maximum
            points += sum(t["score"] for t in tests)
        statuses.append(results["status"])
    return {"table": table, "table_max": table_max, "points": points, "max_points": max_points,
            "statuses": statuses}


_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
_FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def gradescope_problems(data: object, max_points: float | None = None) -> list[str]:
    """What in ``data`` (a parsed results.json) breaks Gradescope's autograder contract."""
    problems: list[str] = []

    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(data, dict):
        return ["results.json is not a JSON object"]
    tests = data.get("tests")
    if "score" not in data and not (isinstance(tests, list) and tests and all("score" in t for t in tests)):
        problems.append("no score: neither a top-level score nor one on every test")
    if "score" in data and not number(data["score"]):
        problems.append(f"score {data['score']!r} is not a number")
    if not isinstance(data.get("output", ""), str):
        problems.append("output is not a string")
    for key in ("visibility", "stdout_visibility"):
        if key in data and data[key] not in _VISIBILITY:
            problems.append(f"{key} {data[key]!r} is not one of {sorted(_VISIBILITY)}")
    if "output_format" in data and data["output_format"] not in _FORMATS:
        problems.append(f"output_format {data['output_format']!r} unknown")
    if tests is not None and not isinstance(tests, list):
        problems.append("tests is not a list")
    for i, test in enumerate(tests or []):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            problems.append(f"{where} is not an object")
            continue
        for key in ("score", "max_score"):
            if key in test and not number(test[key]):
                problems.append(f"{where}.{key} {test[key]!r} is not a number")
        if number(test.get("score")) and number(test.get("max_score")) and not 0 <= test["score"] <= test["max_score"]:
            problems.append(f"{where}: score {test['score']} outside 0..{test['max_score']}")
        if "status" in test and test["status"] not in ("passed", "failed"):
            problems.append(f"{where}.status {test['status']!r} is not passed/failed")
        if "visibility" in test and test["visibility"] not in _VISIBILITY:
            problems.append(f"{where}.visibility {test['visibility']!r} unknown")
        for key in ("name", "output"):
            if key in test and not isinstance(test[key], str):
                problems.append(f"{where}.{key} is not a string")
    if tests and "score" in data and number(data["score"]):
        total = sum(t.get("score", 0) for t in tests if isinstance(t, dict) and number(t.get("score")))
        if abs(total - data["score"]) > 1e-9:
            problems.append(f"score {data['score']} is not the sum of the tests' scores ({total})")
    if max_points is not None and tests:
        best = sum(t.get("max_score", 0) for t in tests if isinstance(t, dict))
        if best != max_points:
            problems.append(f"the tests' max_score add up to {best}, not {max_points}")
    return problems


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("classroom")
    p.add_argument("repo")
    p.add_argument("--skip", action="append", default=[])
    p.add_argument("--repository", default="course/lab-assignment-student")
    p.add_argument("--python-bin", default=None, help="what actions/setup-python puts first on PATH")
    p = sub.add_parser("gradescope")
    p.add_argument("results")
    p.add_argument("--max", type=float, default=None)
    args = parser.parse_args(argv)
    if args.what == "classroom":
        given = replay_classroom(Path(args.repo), skip=tuple(args.skip), repository=args.repository,
                                 python_bin=args.python_bin)
        sys.stderr.write(given.pop("log") + "\n")
        print(json.dumps(given))
        return 0
    problems = gradescope_problems(json.loads(Path(args.results).read_text(encoding="utf-8")), args.max)
    for problem in problems:
        print(f"{args.results}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
