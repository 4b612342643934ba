"""The student repository and the two platforms that grade it: GitHub Classroom and Gradescope.

Both platforms run the same ``dockerlab grade`` on a one-student class; this module only adapts
what goes in (whatever shape a student uploaded) and what comes out (each platform's format):

``release``            the student repository: stubs, graded tests, builder, a Classroom workflow.
``run_classroom``      the workflow's grading step: one reporter runner per task, so the
                       reporter's table and the points Classroom records are the same numbers.
``gradescope_bundle``  Gradescope's autograder zip (``setup.sh``, ``run_autograder``, the grader).
``run_gradescope``     ``run_autograder``'s body: find the lab files, grade, write results.json.

The files written into the student repository and the zip are in ``dockerlab/templates/``.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import io
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import traceback
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fakeroot_builder.errors import DockerLabError

from dockerlab.labinfo import Lab, repo_root
from dockerlab.labinfo import lab as lab_info
from dockerlab.labinfo import labs as all_labs

__all__ = [
    "classroom_payloads", "classroom_workflow", "course_files", "gradescope_bundle", "locate_labs",
    "release", "run_classroom", "run_gradescope", "runner_id",
]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: The bundle's settings, read by ``run_autograder`` (labs, time budgets).
BUNDLE_CONFIG = "dockerlab-gradescope.json"
SECRET_FILE = ".dockerlab-secret"
_NEVER = {"__pycache__", ".pytest_cache", "solutions", ".tox", ".venv"}


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _labs(ids: Sequence[str] | None) -> tuple[Lab, ...]:
    """The labs ``ids`` names (all of ``labs/info.toml`` when ``None``), with a clear error otherwise."""
    if not ids:
        return all_labs()
    try:
        return tuple(lab_info(i) for i in dict.fromkeys(ids))
    except KeyError as exc:
        raise DockerLabError(exc.args[0]) from None


def parse_labs(text: str | None) -> tuple[Lab, ...]:
    """``--labs lab1,lab2`` (``None`` or empty: every lab)."""
    return _labs([x.strip() for x in (text or "").split(",") if x.strip()])


# ---------------------------------------------------------------------------------------------
# What a student repository and the Gradescope zip hold
# ---------------------------------------------------------------------------------------------

def course_files(labs: Sequence[Lab]) -> Iterator[tuple[str, Path]]:
    """``(path in the copy, source file)`` for what students and platforms get of the course.

    The builder, the ``dockerlab`` package (with its grader and templates), every lab's stubs and
    info.toml, ``pyproject.toml``, and of ``tests/`` only what the graded tests of ``labs`` need:
    ``conftest.py``, helper modules and ``test_<lab>.py``. Never ``solutions/`` nor the maintainer's
    tests (author check, grader, conformance: they need ``solutions/`` or a Docker daemon).
    """
    source = repo_root()
    graded = {f"test_{lab.id}.py" for lab in labs}
    for top in ("labs", "fakeroot_builder", "dockerlab"):
        for path in sorted((source / top).rglob("*")):
            rel = path.relative_to(source)
            if path.is_file() and not path.is_symlink() and not _NEVER & set(rel.parts) and path.suffix != ".pyc":
                yield rel.as_posix(), path
    for path in sorted((source / "tests").iterdir()):
        if path.is_file() and path.suffix == ".py" and (not path.name.startswith("test_") or path.name in graded):
            yield f"tests/{path.name}", path
    yield "pyproject.toml", source / "pyproject.toml"


def _env_names(name: str) -> set[str]:
    """tox's generative names: ``lab{1,2}`` → ``{"lab1", "lab2"}`` (every ``{a,b}`` group expanded)."""
    match = re.search(r"\{([^{}]*)\}", name)
    if not match:
        return {name}
    return {n for part in match.group(1).split(",")
            for n in _env_names(name[: match.start()] + part.strip() + name[match.end():])}


def student_tox_ini(labs: Sequence[Lab]) -> str:
    """The course's ``tox.ini`` cut down to the labs' environments (one per lab of ``info.toml``).

    The course's own lab sections are kept as they are (generative ones too); a lab the course's
    tox.ini does not cover gets the same kind of section.
    """
    course = configparser.ConfigParser(interpolation=None)
    course.read(repo_root() / "tox.ini", encoding="utf-8")
    ids = {lab.id for lab in labs}
    out = configparser.ConfigParser(interpolation=None)
    out["tox"] = dict(course["tox"]) if course.has_section("tox") else {}
    out["tox"]["env_list"] = ", ".join(lab.id for lab in labs)
    out["tox"].pop("skip_missing_interpreters", None)
    out["testenv"] = dict(course["testenv"]) if course.has_section("testenv") else {}
    out["testenv"]["description"] = "grade a lab against your code in labs/"
    out["testenv"].pop("commands", None)
    covered: set[str] = set()
    for section in course.sections():
        if section.startswith("testenv:") and _env_names(section.split(":", 1)[1]) & ids:
            out[section] = dict(course[section])
            covered |= _env_names(section.split(":", 1)[1])
    for lab in labs:
        if lab.id not in covered:
            out[f"testenv:{lab.id}"] = {
                "description": f"{lab.id} ({lab.title}) against your code in labs/",
                "commands": f"pytest tests/test_{lab.id}.py --impl labs -q --no-header {{posargs}}",
            }
    text = io.StringIO()
    out.write(text)
    return text.getvalue()


def _gitignore() -> str:
    """The student's ``.gitignore``: the template's entries plus the course's own (saved progress…)."""
    lines = _template("gitignore").splitlines()
    course = repo_root() / ".gitignore"
    if course.is_file():
        lines += ["", "# as in the course repository"]
        have = {line.rstrip("/") for line in lines}
        lines += [line for line in course.read_text(encoding="utf-8").splitlines()
                  if line.strip() and line.rstrip("/") not in have and not line.startswith("/")]
    return "\n".join(lines) + "\n"


def runner_id(task_key: str) -> str:
    """The reporter's runner name of a task (``lab1.task3`` → ``lab1task3``): letters and digits only.

    The reporter reads a runner's result from the environment variable ``<RUNNER>_RESULTS``
    (upper-cased) and accepts runner names matching ``[a-zA-Z0-9]+``.
    """
    return re.sub(r"[^a-z0-9]", "", task_key.lower())


def classroom_workflow(labs: Sequence[Lab]) -> str:
    """``.github/workflows/classroom.yml`` for ``labs``: one reporter runner per task."""
    runners = [runner_id(t.key) for lab in labs for t in lab.tasks]
    env = "\n".join(f"          {r.upper()}_RESULTS: ${{{{ steps.dockerlab.outputs.{r} }}}}" for r in runners)
    minutes = 10 + 4 * len(labs)  # install + each lab's budget (180 s) with room to spare
    return (_template("classroom.yml").replace("@LABS@", ",".join(lab.id for lab in labs))
            .replace("@REPORTER_ENV@", env).replace("@RUNNERS@", ",".join(runners))
            .replace("@JOB_MINUTES@", str(minutes)))


def release(out: Path, labs: Sequence[str] | None = None) -> Path:
    """Write the student repository into ``out`` (absent or empty): no solutions, no secret.

    ``labs`` (default: all) are the labs the Classroom workflow grades; every lab's stubs ship.
    The released ``dockerlab`` keeps its ``grading`` package so the workflow runs the same grader;
    it holds no secret (the workflow takes one from the organisation's secrets).
    """
    graded = _labs(labs)
    everything = all_labs()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DockerLabError(f"{out}: not empty; release writes only into an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    for rel, path in course_files(everything):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / rel)
    (out / "tox.ini").write_text(student_tox_ini(everything), encoding="utf-8")
    (out / ".gitignore").write_text(_gitignore(), encoding="utf-8")
    workflows = out / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "classroom.yml").write_text(classroom_workflow(graded), encoding="utf-8")
    tasks = "\n".join(f"- {t.key}: {t.title} ({t.points} points)" for lab in everything for t in lab.tasks)
    readme = (_template("student-README.md")
              .replace("@MODULES@", ", ".join(f"`labs/{lab.module}`" for lab in everything))
              .replace("@HANDOUTS@", ", ".join(f"`labs/{lab.id}/README.md`" for lab in everything)
                       + " (한국어: `README.ko.md`)")
              .replace("@FILES@", ", ".join(f"`{PurePosixPath(lab.module).name}`" for lab in everything))
              .replace("@TASKS@", tasks))
    (out / "README.md").write_text(readme, encoding="utf-8")
    leaked = [p for p in out.rglob("*") if p.name in ("solutions", SECRET_FILE)]
    if leaked:
        raise DockerLabError(f"release would include {leaked[0]}")
    return out


# ---------------------------------------------------------------------------------------------
# Finding the lab files in an upload, whatever its shape
# ---------------------------------------------------------------------------------------------

_SKIP_DIRS = {"__pycache__", "__MACOSX", "node_modules", "site-packages", "solutions", "tests"}
_COURSE_PACKAGES = {"fakeroot_builder", "dockerlab"}  # the course's own code, not the student's
_MAX_DEPTH = 8
_MAX_SEEN = 20_000
_MAX_FILE = 512 * 1024


@dataclass
class Located:
    """Where an upload's lab files are: ``files`` maps ``lab1/layerdb.py`` to its source file."""

    files: dict[str, Path] = field(default_factory=dict)
    extra_root: Path | None = None  # a labs folder whose other .py files (helpers) come along
    shapes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    zips: list[PurePosixPath] = field(default_factory=list)

    def describe(self) -> str:
        """What was found, for the student (results.json's ``output``)."""
        lines = []
        if self.files:
            lines.append("Found your lab files: " + "; ".join(self.shapes) + ".")
            lines.append("Graded: " + ", ".join(f"labs/{rel}" for rel in sorted(self.files)) + ".")
        if self.missing:
            lines.append("Not found (those labs score 0): " + ", ".join(f"labs/{m}" for m in self.missing) + ".")
        return "\n".join(lines)


def _walk(top: Path) -> tuple[list[PurePosixPath], list[PurePosixPath]]:
    """Regular ``.py`` and ``.zip`` files under ``top`` (relative), breadth first, bounded.

    No symlinks, no hidden folders, no virtual environments, at most ``_MAX_DEPTH`` levels and
    ``_MAX_SEEN`` entries: an upload cannot make this slow or deep.
    """
    py: list[PurePosixPath] = []
    zips: list[PurePosixPath] = []
    queue = deque([(top, PurePosixPath())])
    seen = 0
    while queue and seen < _MAX_SEEN:
        folder, rel = queue.popleft()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if entry.is_symlink() or entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS and len(rel.parts) < _MAX_DEPTH \
                        and not os.path.exists(os.path.join(entry.path, "pyvenv.cfg")) \
                        and not (entry.name in _COURSE_PACKAGES and os.path.exists(os.path.join(entry.path, "__init__.py"))):
                    queue.append((Path(entry.path), rel / entry.name))
            elif entry.is_file(follow_symlinks=False):
                if entry.name.endswith(".py"):
                    py.append(rel / entry.name)
                elif entry.name.endswith(".zip"):
                    zips.append(rel / entry.name)
    return py, zips


def _where(root: PurePosixPath, upload: Path) -> str:
    if root == PurePosixPath("."):
        return "the lab folders (" + ", ".join(sorted({p.name for p in upload.iterdir() if p.is_dir()})[:4]) \
            + ") at the top of your upload, i.e. the contents of labs/"
    if root == PurePosixPath("labs"):
        whole = any((upload / marker).exists() for marker in ("tox.ini", "pyproject.toml", "tests", ".git"))
        return "labs/ at the top of your upload (" + ("a whole repository" if whole else "a labs/ folder") + ")"
    if root.name == "labs":
        return f"labs/ inside {root.parent}/ (a folder such as GitHub's Download ZIP makes)"
    return f"lab folders inside {root}/"


def locate_labs(upload: Path, labs: Sequence[Lab]) -> Located:
    """Find each lab's module in ``upload`` (a folder), whatever the upload's shape.

    In order: a labs folder (``labs/``, ``<repo>-main/labs/``, or its contents ``lab1/…`` at the
    top), recognised by ``<lab dir>/<module file>`` as ``labs/info.toml`` names them; then loose
    module files (``layerdb.py``) for the labs still missing, mapped by file name when that name
    belongs to one lab only; then the same inside a ``.zip`` of the upload.
    """
    py, zips = _walk(upload)
    modules = {lab.id: PurePosixPath(lab.module) for lab in labs}
    found = Located()
    # 1. A labs folder: the parent of <lab dir>/<file>, the one holding most labs, named labs, shallowest.
    roots: dict[PurePosixPath, set[str]] = {}
    for rel in py:
        for lab_id, module in modules.items():
            if len(rel.parts) >= len(module.parts) and rel.parts[-len(module.parts):] == module.parts:
                root = PurePosixPath(*rel.parts[: len(rel.parts) - len(module.parts)]) if len(rel.parts) > len(module.parts) \
                    else PurePosixPath(".")
                roots.setdefault(root, set()).add(lab_id)
    if roots:
        best = min(roots, key=lambda r: (-len(roots[r]), r.name != "labs", len(r.parts), str(r)))
        for lab_id in sorted(roots[best]):
            found.files[str(modules[lab_id])] = upload / best / modules[lab_id]
        found.extra_root = upload / best
        found.shapes.append(_where(best, upload))
    # 2. Loose module files for the labs still missing, by a file name that only one lab uses.
    names: dict[str, list[str]] = {}
    for lab_id, module in modules.items():
        names.setdefault(module.name, []).append(lab_id)
    loose = []
    for lab_id, module in modules.items():
        if str(module) in found.files or len(names[module.name]) != 1:
            continue
        candidates = sorted((r for r in py if r.name == module.name), key=lambda r: (len(r.parts), str(r)))
        if candidates:
            found.files[str(module)] = upload / candidates[0]
            loose.append(f"{candidates[0]} → labs/{module}")
    if loose:
        found.shapes.append("loose module files (" + ", ".join(loose) + ")")
    found.missing = [str(m) for m in modules.values() if str(m) not in found.files]
    found.zips = zips
    return found


def _unzip_python(archive: Path, target: Path) -> None:
    """The ``.py`` members of ``archive`` into ``target`` (bounded in count and size; no links)."""
    kept = 0
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist()[:_MAX_SEEN]:
            path = PurePosixPath(member.filename)
            kind = (member.external_attr >> 16) & 0o170000
            if member.is_dir() or path.suffix != ".py" or path.is_absolute() or ".." in path.parts \
                    or kind not in (0, stat.S_IFREG) or member.file_size > _MAX_FILE \
                    or len(path.parts) > _MAX_DEPTH + 1 or kept >= 200:
                continue
            dest = target.joinpath(*path.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src:
                dest.write_bytes(src.read(_MAX_FILE + 1)[:_MAX_FILE])
            kept += 1


def stage_upload(upload: Path, target: Path, labs: Sequence[Lab]) -> Located:
    """Copy the lab files of ``upload`` into ``target`` (laid out as ``labs/``); returns what was found."""
    from .sandbox import copy_labs

    found = locate_labs(upload, labs)
    zips = found.zips
    if not found.files and zips:  # nothing outside: look inside the (first) zip
        unpacked = Path(tempfile.mkdtemp(prefix="dockerlab-upload-"))
        try:
            _unzip_python(upload / zips[0], unpacked)
            inner = locate_labs(unpacked, labs)
            if inner.files:
                inner.shapes = [f"inside {zips[0]}: {s}" for s in inner.shapes]
                _copy_found(inner, target, copy_labs)
                return inner
        except (zipfile.BadZipFile, OSError, ValueError):
            pass
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
    _copy_found(found, target, copy_labs)
    return found


def _copy_found(found: Located, target: Path, copy_labs) -> None:  # type: ignore[no-untyped-def]
    target.mkdir(parents=True, exist_ok=True)
    if found.extra_root is not None:
        copy_labs(found.extra_root, target)  # the labs folder with its helpers, as the grader takes it
    for rel, source in found.files.items():
        dest = target / rel
        if dest.exists() or source.is_symlink() or not source.is_file() or source.stat().st_size > _MAX_FILE:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)


# ---------------------------------------------------------------------------------------------
# GitHub Classroom
# ---------------------------------------------------------------------------------------------

def _payload(title: str, points: int, passed: bool, message: str) -> str:
    """One runner's result as the reporter decodes it: base64 of UTF-8 JSON."""
    result = {
        "version": 1,
        "status": "pass" if passed else "fail",
        "max_score": points,
        "tests": [{"name": title, "status": "pass" if passed else "fail", "score": points if passed else 0,
                   "message": message, "test_code": "", "filename": "", "line_no": 0, "execution_time": ""}],
    }
    return base64.b64encode(json.dumps(result, ensure_ascii=False).encode("utf-8")).decode("ascii")


def classroom_payloads(labs: Sequence[Lab], graded: dict[str, tuple[bool, str]]) -> dict[str, str]:
    """Every task's runner result; ``graded`` maps a task key to (passed, feedback); absent: 0.

    One runner per task holding one test worth the task's points: the reporter's table (passed
    tests / tests × max score, per runner) and Classroom's points (the sum of the tests' scores)
    are then the same numbers.
    """
    out = {}
    for lab in labs:
        for task in lab.tasks:
            passed, message = graded.get(task.key, (False, "not graded"))
            out[runner_id(task.key)] = _payload(f"{lab.id} task {task.number}: {task.title}", task.points,
                                                passed, message)
    return out


def _graded(result, results_json: dict) -> dict[str, tuple[bool, str]]:  # type: ignore[no-untyped-def]
    """Task key → (passed, the feedback results.json gives for it), in the report's own order."""
    outputs = [t.get("output", "") for t in results_json.get("tests", [])]
    return {t.task.key: (t.passed and t.score == t.task.points, outputs[i] if i < len(outputs) else "")
            for i, t in enumerate(result.tasks)}


def _announce_mode() -> None:
    """The sandbox mode in force, first in the platform's log (stdout: the log students see)."""
    from . import sandbox

    state = sandbox.info()
    print(f"dockerlab: grading mode {state.mode}: {state.description}", flush=True)
    if state.warning:
        print(f"dockerlab: warning: {state.warning}", flush=True)


def _student_of_repository(repository: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._@+-]", "-", repository.rsplit("/", 1)[-1]).lstrip("._@+-")[:100]
    return name or "student"


def run_classroom(labs: Sequence[Lab], workspace: Path, env: dict[str, str] | None = None) -> int:
    """The workflow's grading step: grade ``workspace``'s labs, print feedback, write the outputs.

    Every runner's output is written to ``$GITHUB_OUTPUT`` (a file, flushed and closed: nothing
    goes through a pipe) whatever happens, so the reporter always has a result to decode.
    """
    from .grader import Timeouts, grade_class

    env = dict(os.environ if env is None else env)
    repository = env.get("GITHUB_REPOSITORY", "student/repository")
    student = _student_of_repository(repository)
    secret = env.get("DOCKERLAB_SECRET") or repository
    _announce_mode()
    graded: dict[str, tuple[bool, str]] = {}
    base = Path(tempfile.mkdtemp(prefix="dockerlab-classroom-", dir=env.get("RUNNER_TEMP") or None))
    try:
        found = stage_upload(workspace, base / "class" / student / "labs", labs)
        print(found.describe() or "dockerlab: no lab file found under labs/", flush=True)
        [result] = grade_class(base / "class", base / "grades", secret, [lab.id for lab in labs], jobs=1,
                               timeouts=Timeouts(), progress=False)
        graded = _graded(result, json.loads((base / "grades" / student / "results.json").read_text(encoding="utf-8")))
        feedback = (base / "grades" / student / "feedback.md").read_text(encoding="utf-8")
        print(feedback, flush=True)
        if env.get("GITHUB_STEP_SUMMARY"):
            with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as fh:
                fh.write(feedback + "\n")
    except Exception:  # noqa: BLE001 - the points must still arrive (as zeros, with the reason)
        traceback.print_exc()
        print("::error::dockerlab could not grade this push; every task reports 0 (see above)", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    payloads = classroom_payloads(labs, graded)
    lines = "".join(f"{name}={value}\n" for name, value in payloads.items())
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        sys.stdout.write(lines)
    total = sum(json.loads(base64.b64decode(p))["tests"][0]["score"] for p in payloads.values())
    print(f"dockerlab: {total}/{sum(lab.points for lab in labs)} points", flush=True)
    return 0




# ---------------------------------------------------------------------------------------------
# Gradescope
# ---------------------------------------------------------------------------------------------

def bundle_secret(out_zip: Path, secret: str | None) -> tuple[str, str]:
    """The secret to bake into the zip and where it came from.

    Gradescope gives autograders no environment variables, so the secret travels in the zip.
    ``secret`` (``--secret``) or ``$DOCKERLAB_SECRET`` first; else the one saved beside the zip by
    an earlier build (``autograder.secret``), so rebuilding keeps every student's hidden trees;
    else a new random one, saved there (mode 0600) for grading the same class locally.
    """
    if secret:
        return secret, "given"
    if os.environ.get("DOCKERLAB_SECRET"):
        return os.environ["DOCKERLAB_SECRET"], "$DOCKERLAB_SECRET"
    saved = out_zip.with_suffix(".secret")
    if saved.is_file():
        text = saved.read_text(encoding="utf-8").strip()
        if text:
            return text, f"reused from {saved}"
    text = secrets.token_urlsafe(32)
    fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return text, f"generated, saved in {saved}"


def gradescope_bundle(out_zip: Path, secret: str, labs: Sequence[str] | None = None,
                      test_timeout: float = 10.0, lab_timeout: float = 180.0, *, force: bool = False) -> Path:
    """Gradescope's autograder zip: ``setup.sh``, ``run_autograder``, the grader, the secret.

    Gradescope unpacks it into ``/autograder/source``, so the course sits at its top. Only the
    graded tests of ``labs`` ship (no ``solutions/``, no maintainer tests).
    """
    graded = _labs(labs)
    if not secret:
        raise DockerLabError("a Gradescope bundle needs a secret (Gradescope has no environment variables)")
    out_zip = Path(out_zip)
    if out_zip.exists() and not force:
        raise DockerLabError(f"{out_zip}: exists; pass --force to replace it")
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    config = {"labs": [lab.id for lab in graded], "test_timeout": test_timeout, "lab_timeout": lab_timeout}
    fd, tmp = tempfile.mkstemp(prefix=out_zip.name + ".", dir=out_zip.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            def add(path: str, data: str | bytes, mode: int = 0o644) -> None:
                info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

            add("setup.sh", _template("setup.sh"), 0o755)
            add("run_autograder", _template("run_autograder"), 0o755)
            for rel, path in course_files(graded):
                add(rel, path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644)
            add("README.md", "dockerlab's Gradescope autograder (written by `dockerlab gradescope-bundle`).\n"
                             "Keep this zip private: it holds the secret the hidden trees derive from.\n")
            add(BUNDLE_CONFIG, json.dumps(config, indent=2) + "\n")
            add(SECRET_FILE, secret + "\n", 0o600)
        os.replace(tmp, out_zip)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_zip


def _gradescope_student(root: Path) -> str:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        student = str(meta["users"][0]["id"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "submission"
    return re.sub(r"[^A-Za-z0-9._@+-]", "-", student).lstrip("._@+-")[:100] or "submission"


def _gradescope_config(source: Path) -> tuple[tuple[Lab, ...], float, float, str]:
    config = json.loads((source / BUNDLE_CONFIG).read_text(encoding="utf-8"))
    labs = _labs(config["labs"])
    secret = os.environ.get("DOCKERLAB_SECRET") or (source / SECRET_FILE).read_text(encoding="utf-8").strip()
    if not secret:
        raise DockerLabError(f"{source / SECRET_FILE} is empty: rebuild the bundle")
    return labs, float(config["test_timeout"]), float(config["lab_timeout"]), secret


def run_gradescope(root: Path = Path("/autograder")) -> int:
    """``run_autograder``: grade ``root/submission`` and write ``root/results/results.json``.

    A results.json is written whatever happens; its ``output`` tells the student which shape of
    upload was found and which lab files were graded.
    """
    from .grader import Timeouts, grade_class

    results_file = root / "results" / "results.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    source = root / "source"
    try:
        labs, test_timeout, lab_timeout, secret = _gradescope_config(source)
        student = _gradescope_student(root)
        _announce_mode()
        with tempfile.TemporaryDirectory(prefix="dockerlab-gradescope-") as tmp:
            base = Path(tmp)
            found = stage_upload(root / "submission", base / "class" / student / "labs", labs)
            print(found.describe() or "no lab file found", flush=True)
            [result] = grade_class(base / "class", base / "out", secret, [lab.id for lab in labs], jobs=1,
                                   timeouts=Timeouts(test=test_timeout, submission=lab_timeout), progress=False)
            data = json.loads((base / "out" / student / "results.json").read_text(encoding="utf-8"))
        files = ", ".join(PurePosixPath(lab.module).name for lab in labs)
        output = found.describe() if found.files else (
            "No lab file found in your upload. Upload your repository, its labs/ folder, or your lab "
            f"files ({files}); any of these shapes works.")
        if result.note:
            output += "\n" + result.note
        data.update({"score": result.total, "output": output, "visibility": "visible",
                     "stdout_visibility": "hidden"})
    except Exception as exc:  # noqa: BLE001 - the student must see a result, the instructor the reason
        traceback.print_exc()
        data = {"score": 0, "tests": [],
                "output": f"The autograder failed ({type(exc).__name__}); nothing you uploaded caused this. "
                          "Tell your instructor."}
    tmp_file = results_file.with_suffix(".tmp")
    tmp_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp_file, results_file)
    print(f"dockerlab: wrote {results_file}: {data.get('score')} points", flush=True)
    return 0


def check_gradescope(source: Path) -> int:
    """``setup.sh``'s last step: fail the image build (not every submission) if grading cannot start."""
    from . import sandbox

    labs = _gradescope_config(source)[0]
    import pytest  # noqa: F401 - the grader's test runner

    print(f"dockerlab autograder ready: {', '.join(lab.id for lab in labs)} "
          f"({sum(lab.points for lab in labs)} points), sandbox {sandbox.info().description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dockerlab.grading.platforms classroom|gradescope``: what the platforms run."""
    parser = argparse.ArgumentParser(prog="python -m dockerlab.grading.platforms")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("classroom", help="the Classroom workflow's grading step (in the repository's checkout)")
    p.add_argument("--labs", default=None)
    p.add_argument("--workspace", default=".")
    p = sub.add_parser("gradescope", help="run_autograder's body")
    p.add_argument("--root", default="/autograder")
    p.add_argument("--check", action="store_true", help="only check that grading can start (setup.sh)")
    args = parser.parse_args(argv)
    if args.command == "classroom":
        return run_classroom(parse_labs(args.labs), Path(args.workspace))
    if args.check:
        return check_gradescope(Path(args.root) / "source")
    return run_gradescope(Path(args.root))


if __name__ == "__main__":
    sys.exit(main())
