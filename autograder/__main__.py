"""Command line of the kit: python -m autograder COMMAND ... (see --help)."""

import argparse
import os
import sys

from . import KIT_ROOT  # noqa: F401  (importing the package puts course_config on the path)
import course_config


def cmd_release(args):
    from .authoring.release import ReleaseError, release
    assignment = course_config.get_assignment(args.assignment)
    try:
        diffs = release(assignment, check=args.check)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if diffs:
            print(f"release/{assignment.name} is out of sync with {course_config.SOURCE_DIR}/{assignment.name}: "
                  f"{', '.join(diffs)}; run `python -m autograder release {assignment.name}` and commit.")
            return 1
        print(f"release/{assignment.name} is in sync with its source.")
        return 0
    print(f"Released {course_config.SOURCE_DIR}/{assignment.name} into {assignment.release_dir}")
    return 0


def _isolation_refused(args, *secret_folders):
    """Print why grading cannot run isolated here and return 2, or note what the worker must not read."""
    from .engine import sandbox
    if getattr(args, "unsafe_local", False):
        os.environ[sandbox.UNSAFE_ENV] = "1"
    why_not = sandbox.refusal(not args.no_sandbox)
    if why_not:
        print(f"error: {why_not}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    # the cache holds the secret probe seeds: closed to the worker even where VAEKIT_CACHE moves it out of the kit
    os.environ[sandbox.SECRETS_ENV] = os.pathsep.join(
        [os.environ.get(sandbox.SECRETS_ENV, ""), *map(os.path.abspath, [*secret_folders, course_config.CACHE_DIR])]
    ).strip(os.pathsep)
    return None


def cmd_grade(args):
    from .engine.grade import grade_to
    assignment = course_config.get_assignment(args.assignment)
    if not os.path.isdir(args.submission):
        print(f"error: {args.submission} is not a folder: unpack the submission into a folder and grade that.",
              file=sys.stderr)
        return 2
    refused = _isolation_refused(args, args.out, args.submission)
    if refused:
        return refused
    if args.probe_set is not None:
        from .engine.grade import choose_probe_set
        try:
            choose_probe_set(assignment, args.probe_set)
        except ValueError as error:
            print(f"error: {error}.", file=sys.stderr)
            return 2
    results = grade_to(assignment, args.submission, args.out, use_sandbox=not args.no_sandbox,
                       probe_set=args.probe_set)
    print(f"{args.submission}: {results['score']} autograded points; results in {args.out}/results.json, "
          f"feedback in {args.out}/feedback.md")
    return 0


def cmd_batch(args):
    from .engine.batch import run_batch
    assignment = course_config.get_assignment(args.assignment)
    if not os.path.isdir(args.submissions):
        print(f"error: {args.submissions} is not a folder of submissions.", file=sys.stderr)
        return 2
    refused = _isolation_refused(args, args.out, args.submissions)
    if refused:
        return refused
    rows = run_batch(assignment, args.submissions, args.out, jobs=args.jobs, use_sandbox=not args.no_sandbox)
    problems = [r for r in rows if r["status"] != "graded"]
    print(f"Graded {len(rows)} submission(s) into {args.out}/ (grades.csv)"
          + (f"; {len(problems)} with problems: " + ", ".join(r["submission"] for r in problems) if problems else ""))
    return 0


def cmd_package(args):
    from .authoring.package import build_gradescope_zip
    assignment = course_config.get_assignment(args.assignment)
    path = build_gradescope_zip(assignment, args.out)
    print(f"Wrote {path}: upload it as the Gradescope autograder of {assignment.name}.")
    return 0


def cmd_cache(args):
    from .engine.grade import all_reference_observations
    assignment = course_config.get_assignment(args.assignment)
    all_reference_observations(assignment, refresh=True)
    print(f"Observed the reference solution of {assignment.name} (cached in {course_config.CACHE_DIR}).")
    return 0


def cmd_reference(args):
    from .authoring.reference import run_reference
    assignment = course_config.get_assignment(args.assignment)
    out = run_reference(assignment, device=args.device, epochs=args.epochs, n_seeds=args.seeds,
                        dataset=args.dataset, data_dir=args.data_dir, out_dir=args.out, notebook=not args.no_notebook)
    print(f"Wrote the reference solution into {out}: results/, metrics.json, provenance.json, README.md"
          + ("" if args.no_notebook else f", {assignment.notebook}"))
    return 0


def cmd_selfcheck(args):
    from .qa.selfcheck import main as selfcheck_main
    return selfcheck_main(args)


def cmd_bench(args):
    from .qa import bench
    if args.what == "data":
        bench.bench_data(dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs, device=args.device)
    elif args.what == "share":
        bench.bench_share(repeat=args.repeat)
    else:
        bench.bench_grade(repeat=args.repeat, batch=args.batch, jobs=args.jobs)
    return 0


def cmd_demo(args):
    from .qa.demo import run_demo
    run_demo(course_config.get_assignment(args.assignment), epochs=args.epochs, data_dir=args.data_dir)
    return 0


def cmd_manual(args):
    from .authoring.manual import main as manual_main
    return manual_main(args)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="generate release/ASSIGNMENT from assignments/ASSIGNMENT")
    p.add_argument("assignment")
    p.add_argument("--check", action="store_true", help="only check that the committed release is in sync")
    p.set_defaults(func=cmd_release)

    p = commands.add_parser("grade", help="grade one submission folder")
    p.add_argument("assignment")
    p.add_argument("submission", help="the submission folder (vae.py, vae.ipynb, results/)")
    p.add_argument("--out", required=True, help="where results.json and feedback.md go")
    p.add_argument("--no-sandbox", action="store_true", help="run without bubblewrap (limits and timeouts stay)")
    p.add_argument("--unsafe-local", action="store_true",
                   help="without bubblewrap and not root: run the submission as yourself (your own check only)")
    p.add_argument("--probe-set", type=int, default=None, metavar="N",
                   help="grade with probe set N (results.json's extra_data names the set a grading used), not "
                        "one drawn at random: to regrade exactly")
    p.set_defaults(func=cmd_grade)

    p = commands.add_parser("batch", help="grade every submission folder (or .zip) under a folder")
    p.add_argument("assignment")
    p.add_argument("submissions", help="a folder holding one folder (or .zip) per submission")
    p.add_argument("--out", required=True, help="one folder per submission and grades.csv go here")
    p.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the CPU count)")
    p.add_argument("--no-sandbox", action="store_true", help="run without bubblewrap (limits and timeouts stay)")
    p.add_argument("--unsafe-local", action="store_true",
                   help="without bubblewrap and not root: run the submissions as yourself (never for grades)")
    p.set_defaults(func=cmd_batch)

    p = commands.add_parser("package", help="build a grading package")
    p.add_argument("platform", choices=["gradescope"])
    p.add_argument("assignment")
    p.add_argument("--out", default="autograder.zip")
    p.set_defaults(func=cmd_package)

    p = commands.add_parser("reference", help="train the reference solutions and write solutions/ASSIGNMENT")
    p.add_argument("assignment")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the course's, 100)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per run; the bands come from their spread")
    p.add_argument("--dataset", default="auto", choices=["auto", "mnist", "mnist-test-split", "synthetic-digits"],
                   help="auto: full MNIST in --data_dir, else its test split (also from ../shared/data), "
                        "else the generated digits")
    p.add_argument("--data_dir", default="./data")
    p.add_argument("--out", default=None, help="default: solutions/ASSIGNMENT")
    p.add_argument("--no-notebook", action="store_true", help="skip the executed solution notebook")
    p.set_defaults(func=cmd_reference)

    p = commands.add_parser("selfcheck", help="grade the kit's catalog of submissions and check every expectation")
    p.add_argument("assignment")
    p.add_argument("--jobs", type=int, default=None, help="entries graded at once (default: the CPU count)")
    p.add_argument("--only", nargs="*", default=None, help="grade only these catalog entries")
    p.add_argument("--fast", action="store_true",
                   help="shorter timeouts (probe 5 s, submission 90 s) so that hostile entries finish sooner")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="grade the selected entries a second time with N busy processes beside them and "
                        "report any score that differs from the idle pass")
    p.add_argument("--shift", type=int, default=0, metavar="K",
                   help="grade each entry with probe set (its place in the catalog + K) modulo the sets, not + 0: "
                        "runs with K = 0 .. 7 together try every entry on every secret probe set")
    p.add_argument("--smoke", action="store_true",
                   help="grade only the catalog's smoke entries (the assignment's SMOKE list: the reference, the "
                        "blank release, a variant, a few mutants and attacks); the whole catalog is `make selfcheck`")
    p.set_defaults(func=cmd_selfcheck)

    p = commands.add_parser("bench", help="benchmarks: the data path, grading, or a fair CPU share in a batch (ratios, not tests)")
    p.add_argument("what", choices=["data", "grade", "share"])
    p.add_argument("--dataset", default="auto", choices=["auto", "mnist", "mnist-test-split", "synthetic-digits"])
    p.add_argument("--data_dir", default="./data")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--jobs", type=int, default=2)
    p.set_defaults(func=cmd_bench)

    p = commands.add_parser("demo", help="release, train the reference briefly, grade reference and release")
    p.add_argument("assignment", nargs="?", default="vae")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data_dir", default="./data")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser("cache", help="observe the reference solution now (grade does it when needed)")
    p.add_argument("assignment")
    p.set_defaults(func=cmd_cache)

    try:
        from .authoring.manual import add_arguments as manual_arguments
    except ImportError:             # a grading-only package (the Gradescope zip) ships no authoring/
        return parser
    p = commands.add_parser("manual", help="manual grading with nbgrader's formgrader, merged with the autograder")
    manual_arguments(p)
    p.set_defaults(func=cmd_manual)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
