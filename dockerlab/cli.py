"""The ``dockerlab`` command (also ``python -m fakeroot_builder``).

Students: ``build``, ``inspect``, ``hint``, ``student-id``. Instructors: ``grade``, ``release``,
``gradescope-bundle``. Conformance and curiosity: ``export``, ``pull-log``.
Errors print one line naming what is wrong and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
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
    from fakeroot_builder.build import plan_root
    from fakeroot_builder.safety import check_target, write_atomically
    from fakeroot_builder.writer import write_plan

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
    notes = write_atomically(out, lambda staging: write_plan(plan, staging))
    truth = plan.truth(notes)
    for note in notes:
        print(f"warning: {out}: {note}", file=sys.stderr)
    if truth_file is not None:
        truth_file.write_text(truth.to_json())
    layers = len(truth.layers())
    print(f"built {out}: {len(truth.images)} images, {layers} layers, {len(truth.containers)} containers (seed {args.seed})")
    return 0


def _cmd_clean(args: argparse.Namespace) -> int:
    from fakeroot_builder.safety import clean

    clean(Path(args.dir).expanduser())
    print(f"removed {args.dir}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect import inspect_image, render_table, to_json

    root = str(Path(args.root).expanduser())
    if not Path(root, "image", "overlay2").is_dir():
        raise DockerLabError(f"{root}: not a Docker data root with the overlay2 driver (no image/overlay2/)")
    info = inspect_image(root, args.ref, args.impl)
    print(to_json(info) if args.json else render_table(info))
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
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("clean", help="remove a root made by `dockerlab build` (rm -rf cannot, as a user)")
    p.add_argument("dir", help="the directory given to build --out")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser("inspect", help="an image's layer stack: layer ids, db ids, cache-ids")
    p.add_argument("ref", help="nginx, nginx:latest, a short or full image id, name@sha256:…")
    p.add_argument("--root", default="/var/lib/docker", help="the Docker data root (read only)")
    p.add_argument("--impl", default=default_impl(), help="labs (your code) or solutions")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("hint", help="the hint of a lab task")
    p.add_argument("lab", help="lab1 or lab2")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dockerlab``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DockerLabError, KeyError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"dockerlab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (NotImplementedError, MissingFunction) as exc:  # --impl labs before the tasks are done
        print(f"dockerlab {args.command}: your lab code is not finished: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
