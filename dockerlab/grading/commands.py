"""The instructor's sub-commands: ``grade``, ``release`` and ``gradescope-bundle``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fakeroot_builder.errors import DockerLabError

__all__ = ["register"]


def _secret(args: argparse.Namespace) -> str:
    secret = args.secret or os.environ.get("DOCKERLAB_SECRET", "")
    if not secret:
        raise DockerLabError("no secret: pass --secret or set $DOCKERLAB_SECRET (hidden seeds derive from it)")
    return secret


def _grade_secret(args: argparse.Namespace) -> str:
    """The secret from ``--secret-file`` or ``$DOCKERLAB_SECRET`` (then removed from our environment)."""
    if args.secret_file:
        path = Path(args.secret_file).expanduser()
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DockerLabError(f"{path}: cannot read the secret file ({exc.strerror})") from None
        if not secret:
            raise DockerLabError(f"{path}: the secret file is empty")
        return secret
    secret = args.secret or os.environ.pop("DOCKERLAB_SECRET", "")
    if not secret:
        raise DockerLabError("no secret: pass --secret-file FILE or set $DOCKERLAB_SECRET (hidden seeds derive from it)")
    return secret


def _secret_off_the_command_line() -> None:
    """``--secret VALUE`` is readable by every process in /proc/<pid>/cmdline: start again without
    it, the value passed in the environment (which only we may read), before any student code runs."""
    argv = sys.argv[1:]
    if os.environ.get("_DOCKERLAB_REEXEC") or not any(a == "--secret" or a.startswith("--secret=") for a in argv):
        return
    rest, secret, skip = [], "", False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--secret" and i + 1 < len(argv):
            secret, skip = argv[i + 1], True
        elif arg.startswith("--secret="):
            secret = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    print("note: --secret is visible to every user in the process list; it was moved off the command line "
          "(use --secret-file or $DOCKERLAB_SECRET)", file=sys.stderr)
    env = dict(os.environ, DOCKERLAB_SECRET=secret, _DOCKERLAB_REEXEC="1")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "dockerlab", *rest], env)


def _cmd_grade(args: argparse.Namespace) -> int:
    from .grader import GradingStopped, SandboxRequired, Timeouts, grade_class
    from .sandbox import SandboxUnavailable

    _secret_off_the_command_line()
    os.environ.pop("_DOCKERLAB_REEXEC", None)
    secret = _grade_secret(args)
    class_dir = Path(args.class_dir).expanduser()
    if not class_dir.is_dir():
        raise NotADirectoryError(f"{class_dir}: not a folder of submissions")
    labs = [x for x in args.labs.split(",") if x] if args.labs else None
    if labs:
        from dockerlab.labinfo import lab

        for lab_id in labs:
            lab(lab_id)  # a clear error for a lab that does not exist
    try:
        results = grade_class(
            class_dir, Path(args.out).expanduser(), secret, labs, args.jobs,
            Timeouts(test=args.test_timeout, submission=args.timeout),
            seeds_per_student=args.seeds, keep=args.keep, progress=not args.no_progress,
            require_sandbox=args.require_sandbox, scratch_in=Path(args.scratch).expanduser() if args.scratch else None,
        )
    except (SandboxRequired, SandboxUnavailable) as exc:
        raise DockerLabError(str(exc)) from None
    except GradingStopped as exc:
        try:
            print(f"dockerlab grade: {exc}: {args.out}/grades.csv lists every student; those not graded yet "
                  "say so in its note", file=sys.stderr)
        except OSError:  # SIGHUP: the terminal may be gone
            pass
        return 128 + exc.signum
    total = sum(r.total for r in results)
    best = sum(r.max for r in results)
    print(f"graded {len(results)} submissions into {args.out}/grades.csv ({total}/{best} points in all)")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from .platforms import parse_labs, release

    labs = parse_labs(args.labs)
    out = release(Path(args.out).expanduser(), [lab.id for lab in labs])
    print(f"wrote the student repository to {out} (no solutions/, no secret); "
          f"its Classroom workflow grades {', '.join(lab.id for lab in labs)} ({sum(lab.points for lab in labs)} points)")
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from .platforms import bundle_secret, gradescope_bundle, parse_labs

    labs = parse_labs(args.labs)
    out = Path(args.out).expanduser()
    if out.exists() and not args.force:
        raise DockerLabError(f"{out}: exists; pass --force to replace it")
    secret, origin = bundle_secret(out, args.secret)
    gradescope_bundle(out, secret, [lab.id for lab in labs], args.test_timeout, args.timeout, force=args.force)
    points = sum(lab.points for lab in labs)
    print(f"wrote {out}: {', '.join(lab.id for lab in labs)}, {points} points "
          f"(set the assignment's autograder points to {points}; "
          f"its timeout above {len(labs) * args.timeout + 60:g} s: {args.timeout:g} s per lab)")
    print(f"warning: the secret ({origin}) is baked into {out}: keep the zip private; anyone holding it "
          "can compute every student's hidden trees", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``grade``, ``release`` and ``gradescope-bundle`` to the ``dockerlab`` command."""
    p = subparsers.add_parser("grade", help="grade a class of submissions on hidden trees")
    p.add_argument("class_dir", metavar="CLASS", help="one folder (or .zip) per student, named by the student id")
    p.add_argument("--out", required=True, help="where grades.csv and <student>/ feedback go")
    p.add_argument("--secret-file", default=None, metavar="FILE",
                   help="file holding the instructor secret for the hidden seeds (default: $DOCKERLAB_SECRET)")
    p.add_argument("--secret", default=None, help=argparse.SUPPRESS)  # visible in ps: moved off the command line
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade unless bubblewrap works here (no weaker fallback mode)")
    p.add_argument("--labs", default=None, help="comma-separated labs to grade (default: all)")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    p.add_argument("--test-timeout", type=float, default=10.0, help="seconds per test (default: 10)")
    p.add_argument("--timeout", type=float, default=180.0, help="wall seconds per lab of a submission (default: 180)")
    p.add_argument("--seeds", type=int, default=1, help="hidden trees per student, besides the canonical one (default: 1)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directories (debugging)")
    p.add_argument("--scratch", default=None, metavar="DIR",
                   help="make the run's temporary folder in DIR (default: /dev/shm, else $TMPDIR); removed at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_grade)

    p = subparsers.add_parser("release", help="write the student repository (no solutions, no secret)")
    p.add_argument("--out", required=True, help="an empty or new folder")
    p.add_argument("--labs", default=None, help="comma-separated labs the Classroom workflow grades (default: all)")
    p.set_defaults(func=_cmd_release)

    p = subparsers.add_parser("gradescope-bundle", help="write Gradescope's autograder zip (keep it private)")
    p.add_argument("--out", required=True, help="the zip to write")
    p.add_argument("--labs", default=None, help="comma-separated labs the assignment grades (default: all)")
    p.add_argument("--secret", default=None,
                   help="the secret baked into the zip (default: $DOCKERLAB_SECRET, else the one saved beside "
                        "the zip by an earlier build, else a new one saved there)")
    p.add_argument("--test-timeout", type=float, default=10.0, help="seconds per test (default: 10)")
    p.add_argument("--timeout", type=float, default=180.0, help="wall seconds per lab of a submission (default: 180)")
    p.add_argument("--force", action="store_true", help="replace an existing zip")
    p.set_defaults(func=_cmd_bundle)
