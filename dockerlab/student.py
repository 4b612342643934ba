"""The student's commands: ``dockerlab progress``, ``dockerlab reset labN [task]``, ``dockerlab watch``.

All of them read the labs from ``labs/info.toml``: a new lab needs no change here.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fakeroot_builder.errors import DockerLabError

from . import labinfo, progress

__all__ = ["pristine_stub", "register", "reset"]


# -- progress --------------------------------------------------------------------------------------


def _cmd_progress(args: argparse.Namespace) -> int:
    print(progress.render_all())
    return 0


# -- reset -----------------------------------------------------------------------------------------


def _is_stub(source: str, functions: list[str]) -> bool:
    """True when every task function of ``source`` ends in ``raise NotImplementedError``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    bodies = {n.name: n.body for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for name in functions:
        body = bodies.get(name)
        if not body or not isinstance(body[-1], ast.Raise):
            return False
        exc = body[-1].exc
        called = exc.func if isinstance(exc, ast.Call) else exc
        if not (isinstance(called, ast.Name) and called.id == "NotImplementedError"):
            return False
    return True


def pristine_stub(lab: labinfo.Lab, root: Path | None = None) -> str:
    """The stub as the course last shipped it: the newest committed ``labs/<module>`` in which
    every task function still raises ``NotImplementedError``.

    Students commit their work, so the file at ``HEAD`` may be theirs; older commits hold the
    course's stub. Without git (a downloaded zip) there is no pristine copy.
    """
    root = root or labinfo.repo_root()
    rel = f"labs/{lab.module}"
    functions = [f for task in lab.tasks for f in task.functions]
    git = shutil.which("git")
    if git is None:
        raise DockerLabError(f"{rel}: cannot find the original stub without git (install git, or download the file from the course)")
    try:
        commits = subprocess.run(
            [git, "-C", str(root), "log", "-n", "500", "--format=%H", "--", rel],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        for commit in commits:
            shown = subprocess.run([git, "-C", str(root), "show", f"{commit}:{rel}"], capture_output=True, text=True)
            if shown.returncode == 0 and _is_stub(shown.stdout, functions):
                return shown.stdout
    except subprocess.CalledProcessError as exc:
        raise DockerLabError(f"{rel}: git could not read its history: {exc.stderr.strip() or exc}") from None
    raise DockerLabError(f"{rel}: no committed version of it is the stub (every task raising NotImplementedError), so there is nothing to restore")


def _functions(source: str, where: str) -> dict[str, tuple[int, int]]:
    """Top-level functions of ``source``: name → (first line incl. decorators, last line), 1-based."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise DockerLabError(f"{where}: cannot be parsed ({exc.msg}, line {exc.lineno}); reset the whole lab instead") from None
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = (first, node.end_lineno or node.lineno)
    return out


def reset_source(mine: str, stub: str, functions: tuple[str, ...], where: str) -> str:
    """``mine`` with each of ``functions`` replaced by the stub's version (appended if missing)."""
    stub_lines = stub.splitlines(keepends=True)
    stub_funcs = _functions(stub, "the original stub")
    lines = mine.splitlines(keepends=True)
    mine_funcs = _functions(mine, where)
    appended: list[str] = []
    for name in sorted(functions, key=lambda n: -mine_funcs.get(n, (0, 0))[0]):
        if name not in stub_funcs:
            continue
        a, b = stub_funcs[name]
        replacement = stub_lines[a - 1: b]
        if name in mine_funcs:
            first, last = mine_funcs[name]
            lines[first - 1: last] = replacement
        else:
            appended = ["\n\n"] + replacement + appended
    text = "".join(lines)
    if appended:
        text = text.rstrip("\n") + "\n" + "".join(appended)
    return text


def reset(lab_id: str, task_number: int | None, yes: bool = False, root: Path | None = None) -> Path | None:
    """Restore the stub of a lab (or one task's functions); returns the backup, None if declined."""
    root = root or labinfo.repo_root()
    lab = labinfo.lab(lab_id, root)
    target = root / "labs" / lab.module
    stub = pristine_stub(lab, root)
    if task_number is None:
        what, tasks = f"every task of {lab.id}", lab.tasks
        new = stub
    else:
        task = lab.task(task_number)
        what, tasks = f"{lab.id} task {task.number} ({', '.join(task.functions)})", (task,)
        mine = target.read_text(encoding="utf-8") if target.exists() else stub
        new = reset_source(mine, stub, task.functions, str(target))
    backup_dir = root / ".dockerlab-backup" / lab.id
    backup = backup_dir / f"{target.name}.{time.strftime('%Y%m%d-%H%M%S')}"
    if not yes:
        print(f"Reset {what} in {target.relative_to(root)} to the stub?")
        if target.exists():
            print(f"Your file is kept as {backup.relative_to(root)}.")
        try:
            answer = input("Type y to reset: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return None
    if target.exists():
        backup_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while backup.exists():
            n += 1
            backup = backup.with_name(f"{target.name}.{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        shutil.copy2(target, backup)
    tmp = target.with_name(f".{target.name}.reset")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, target)
    progress.forget([t.key for t in tasks], root)
    print(f"reset {what}" + (f"; your file is in {backup.relative_to(root)}" if target.exists() and backup.exists() else ""))
    return backup


def _cmd_reset(args: argparse.Namespace) -> int:
    reset(args.lab, args.task, yes=args.yes)
    return 0


# -- marks: overlay's deletion and opaque markers, in every form ---------------------------------


def marks(root: Path) -> list[str]:
    """``whiteout PATH`` / ``opaque PATH`` for every marker in the layers' ``diff/`` directories.

    ``find -type c`` and ``getfattr`` see only one form each (and getfattr is often missing);
    :func:`fakeroot_builder.formats.is_whiteout` and ``is_opaque`` know every form, including
    those a build without privileges falls back to.
    """
    from fakeroot_builder.formats import is_opaque, is_whiteout

    overlay = root / "overlay2"
    if not overlay.is_dir():
        raise DockerLabError(f"{root}: no overlay2/ directory (give the data root, e.g. ~/fake-docker)")
    found = []
    for layer in sorted(overlay.iterdir()):
        diff = layer / "diff"
        if layer.name == "l" or not diff.is_dir():
            continue
        for here, dirs, files in os.walk(diff):
            for name in sorted(dirs + files):
                path = os.path.join(here, name)
                if is_whiteout(path):
                    found.append(f"whiteout  {path}")
                elif name in dirs and is_opaque(path):
                    found.append(f"opaque    {path}")
    return found


def _cmd_marks(args: argparse.Namespace) -> int:
    found = marks(Path(args.root).expanduser())
    print("\n".join(found) if found else "no whiteouts and no opaque directories")
    return 0


# -- registration ----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``progress``, ``reset`` and ``watch`` to the ``dockerlab`` command."""
    ids = ", ".join(lab.id for lab in labinfo.labs())
    p = sub.add_parser("progress", help="your progress in every lab (saved by tox -e labN and watch)")
    p.set_defaults(func=_cmd_progress)

    p = sub.add_parser("reset", help="restore the stub of a lab, or of one task (your file is backed up)")
    p.add_argument("lab", help=ids)
    p.add_argument("task", nargs="?", type=int, default=None, help="just this task's functions")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=_cmd_reset)

    p = sub.add_parser("marks", help="whiteouts and opaque directories in every layer's diff/ (all forms)")
    p.add_argument("root", help="a Docker data root, e.g. ~/fake-docker")
    p.set_defaults(func=_cmd_marks)

    from . import draw, watch

    watch.register(sub)
    draw.register(sub)
