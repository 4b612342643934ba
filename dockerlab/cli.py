"""The ``dockerlab`` command (also ``python -m fakeroot_builder``).

Students: ``build``, ``inspect``, ``hint``, ``student-id``. Instructors: ``grade``, ``release``,
``gradescope-bundle``. Conformance and curiosity: ``export``, ``pull-log``.
Errors print one line naming what is wrong and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import os
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from fakeroot_builder import CANONICAL_SEED
from fakeroot_builder.errors import DockerLabError

from . import labinfo
from .impl import MissingFunction, default_impl

__all__ = ["main"]

#: Modules that add their own sub-commands through ``register(subparsers)``.
_COMMAND_MODULES = ("dockerlab.export", "dockerlab.grading.commands", "dockerlab.student")


def _cmd_build(args: argparse.Namespace) -> int:
    from fakeroot_builder.build import plan_root, write_store
    from fakeroot_builder.safety import check_target, write_atomically

    out = Path(args.out).expanduser()
    check_target(out, args.force)
    images = None
    if args.images is not None:
        images = [x.strip() for x in args.images.split(",") if x.strip()]
        if not images:
            raise DockerLabError(f"--images {args.images!r} names no image")
    truth_file = Path(args.truth).expanduser() if args.truth else None
    if truth_file is not None and not truth_file.parent.is_dir():
        raise DockerLabError(f"--truth {truth_file}: directory {truth_file.parent} does not exist")
    plan = plan_root(seed=args.seed, images=images, host_seed=args.host_seed, containers=not args.no_containers)
    truth = write_atomically(out, lambda staging: write_store(plan, staging, args.store))
    for note in truth.notes:
        print(f"warning: {out}: {note}", file=sys.stderr)
    if truth_file is not None:
        truth_file.write_text(truth.to_json())
    layers = len(truth.layers())
    store = "containerd store (Docker 29)" if args.store == "containerd" else "classic store (overlay2)"
    print(f"built {out}: {len(truth.images)} images, {layers} layers, {len(truth.containers)} containers (seed {args.seed}, {store})")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from fakeroot_builder.safety import clean

    clean(Path(args.dir).expanduser())
    print(f"removed {args.dir}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .containerd_tools import inspect_containerd, render_containerd
    from .inspect import inspect_image, render_table, to_json
    from .stores import CONTAINERD, find_store

    store = find_store(args.root, again=["inspect", args.ref])
    if store.kind == CONTAINERD:
        info, render = inspect_containerd(store.root, args.ref, args.impl), render_containerd
    else:
        info, render = {"store": store.kind, **inspect_image(store.root, args.ref, args.impl)}, render_table
    if args.json:
        print(to_json(info))
    else:
        print(store.describe())
        print(render(info))
    return 0


def _cmd_hint(args: argparse.Namespace) -> int:
    lab = labinfo.lab(args.lab)
    task = lab.task(args.task)
    print(f"{lab.id} task {task.number}: {task.title} ({task.points} points)")
    print(f"functions: {', '.join(task.functions)}")
    print()
    print(task.hint)
    return 0


def _cmd_student_id(args: argparse.Namespace) -> int:
    marker = labinfo.repo_root() / ".dockerlab-student"
    if args.id is None:
        print(marker.read_text().strip() if marker.exists() else "no student id set")
        return 0
    if not args.id.strip() or any(c.isspace() for c in args.id):
        raise DockerLabError(f"student id {args.id!r}: use one word, e.g. your student number")
    marker.write_text(args.id.strip() + "\n")
    print(f"student id set to {args.id.strip()}: `tox -e lab1` now also tests your own tree")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="dockerlab", description="How Docker stores images on disk, hands on.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="write a fake Docker data root")
    p.add_argument("--out", required=True, help="directory to create (must be empty or absent)")
    p.add_argument("--seed", type=int, default=CANONICAL_SEED, help=f"layer content and ids (default: {CANONICAL_SEED}, the handouts' tree)")
    p.add_argument("--host-seed", type=int, default=None, help="random ids only: the same pull on another host")
    p.add_argument("--images", default=None, help="comma-separated images (default: the whole catalogue)")
    p.add_argument("--truth", default=None, help="also write the ground truth as JSON to this file")
    p.add_argument("--no-containers", action="store_true", help="leave out the containers")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument(
        "--store", choices=("classic", "containerd"), default="classic",
        help="classic: /var/lib/docker with overlay2 (default); containerd: /var/lib/containerd as Docker 29 leaves it",
    )
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("clean", help="remove a root made by `dockerlab build` (rm -rf cannot, as a user)")
    p.add_argument("dir", help="the directory given to build --out")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser("inspect", help="an image's layer stack: layer ids, db ids, cache-ids")
    p.add_argument("ref", help="nginx, nginx:latest, a short or full image id, name@sha256:…")
    p.add_argument("--root", default=None, help="a Docker data root or a containerd root (read only; "
                   "default: /var/lib/docker, else /var/lib/containerd)")
    p.add_argument("--impl", default=default_impl(), help="labs (your code) or solutions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("hint", help="the hint of a lab task")
    p.add_argument("lab", help="lab1, lab2 or lab3")
    p.add_argument("task", type=int, help="task number")
    p.set_defaults(func=_cmd_hint)

    p = sub.add_parser("student-id", help="set (or show) your student id; your tests then use your own tree")
    p.add_argument("id", nargs="?", default=None)
    p.set_defaults(func=_cmd_student_id)

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not part of this release (e.g. the student repository)
                continue
            raise
        module.register(sub)
    return parser


#: The README's install: what a missing third-party package is fixed by.
INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install tox -e '.[test]'"
#: Packages a command imports beyond the standard library and Faker (checked before it starts,
#: so nothing is written before the run would die).
_NEEDS = {"grade": ("pytest",)}


def _missing(command: str, exc: ModuleNotFoundError | None = None) -> str | None:
    import importlib.util

    if exc is not None:
        name = (exc.name or "?").split(".")[0].lstrip("_")
        return f"dockerlab {command}: error: the Python package {name!r} is not installed; install the course as README.md says, in its repository: {INSTALL}"
    for name in _NEEDS.get(command, ()):
        if importlib.util.find_spec(name) is None:
            return f"dockerlab {command}: error: the Python package {name!r} is not installed; install the course as README.md says, in its repository: {INSTALL}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dockerlab``; returns the exit status."""
    try:
        parser = build_parser()
    except ModuleNotFoundError as exc:  # a command module needs a package that is not installed
        print(_missing(" ".join((sys.argv[1:] if argv is None else list(argv))[:1]), exc), file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    problem = _missing(args.command)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `dockerlab draw nginx | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in {"dockerlab", "fakeroot_builder", "labs", "solutions"}:
            raise  # our own code: a bug, not an installation problem
        print(_missing(args.command, exc), file=sys.stderr)
        return 2
    except PermissionError as exc:  # a real host's store, read as an ordinary user
        where = exc.filename or "a file of the root"
        print(f"dockerlab {args.command}: error: {where} is readable by root only: "
              f"run the same command with `sudo $(command -v dockerlab) {args.command} …`", file=sys.stderr)
        return 2
    except (DockerLabError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"dockerlab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (NotImplementedError, MissingFunction) as exc:  # --impl labs before the tasks are done
        print(f"dockerlab {args.command}: your lab code is not finished: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
