"""Tests of the tests: grade the kit's catalog of submissions with the real grader and check that
each earns what it must.

    python -m autograder selfcheck ASSIGNMENT [--jobs N] [--only NAME ...] [--fast]

The catalog (autograder/catalog/<assignment>/) holds the reference, the blank release, correct
variants, mutants, hostile and malformed submissions, each with its expected score per task.
Each entry is built into a folder (vae.py, results/, vae.ipynb) and graded by the grader's own
grade_to() with bubblewrap on, in a process of its own (--jobs at once); the entries marked
`batch` are graded by a real run_batch() beside an honest copy of the reference. The selfcheck
then prints

  - a matrix: each hidden test (columns) x each entry (rows), passed or failed;
  - per entry and task, the points it got against what it must get;
  - a summary: entries, failed expectations, hidden tests that no mutant fails, the slowest entry;

and exits 1 when anything failed: an expectation, a hidden test that no mutant fails (the test
is redundant or untested), a missing feedback phrase, an entry graded past its time bound, or
an isolation check over the whole run: a process left behind (the worker's uids, or an orphan
adopted by the selfcheck), a connection to the loopback listener the hostile entries aim at, a
change in the kit's checkout, a forged file where the hostile entries try to write, the scratch
disk (/tmp) filling by more than 1 GiB while the gradings run.

--fast shortens the sandbox's limits for the single-entry gradings (probe 5 s, import 30 s,
90 s per submission), so that the entries that hang or sleep finish sooner; it changes no score,
and the batch keeps the course's limits (it runs the grade command as CI does).

The results/ of the reference-like entries are the committed reference results
(solutions/<assignment>/results/, the files the grader reads), plus, when they hold no CelebA
run, the bonus folder of a real 100-epoch run of the reference on a tiny fake CelebA, made once
and cached in course_config.CACHE_DIR.

The submissions and the grader's outputs (results.json, feedback.md, grader.log per entry) stay in
a /tmp/vaekit-selfcheck-* folder when the selfcheck fails, or always with VAEKIT_SELFCHECK_KEEP=1.
"""

import dataclasses
import hashlib
import inspect
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

import course_config
from .. import KIT_ROOT, graders
from ..engine import sandbox
from . import catalog

MARGIN_SECONDS = 60             # an entry's grading may take the worker's wall_seconds plus this
MAX_DISK_GROWTH = 1 << 30       # what all the gradings together may add to the scratch disk at a time
WORKER_UIDS = range(100000, 200000)     # sandbox.worker_uid()'s range
SCANNED_PLACES = (Path("/tmp"), Path("/autograder/results"), Path.home())   # where forgers aim, outside the kit
SKIPPED_IN_KIT = {".git", "__pycache__", ".pytest_cache"}
HONEST = "honest-reference"     # the honest submission in the batch


# --- preparation ------------------------------------------------------------------------------

class SetupError(Exception):
    """The selfcheck cannot run here; the message says why."""


def fast_limits(limits):
    return dataclasses.replace(limits, probe_seconds=5, wall_seconds=90, import_seconds=30)


def hidden_test_points(assignment):
    """({task: autograded points of its hidden tests}, {task: points of its result-file tests})."""
    from ..engine.grade import hidden_tests
    total = {t.id: 0 for t in assignment.tasks}
    files = {t.id: 0 for t in assignment.tasks}
    for _, function in hidden_tests(assignment):
        grading, fixtures = function.grading, set(inspect.signature(function).parameters)
        total[grading["task"]] += grading["points"]
        if "results" in fixtures and "student" not in fixtures:
            files[grading["task"]] += grading["points"]
    return total, files


def check_points(assignment):
    """The hidden tests' points add up, per task, to course_config's auto_points."""
    total, _ = hidden_test_points(assignment)
    return [f"the hidden tests of {t.id} are worth {total[t.id]} points, course_config says {t.auto_points}"
            for t in assignment.tasks if total[t.id] != t.auto_points]


def hidden_tests_by_task(assignment):
    """({task: [test ids in file order]}, {test id: (title, points)}), tasks in course order."""
    from ..engine.grade import hidden_tests
    order = [t.id for t in assignment.tasks]
    functions = sorted((function for _, function in hidden_tests(assignment)),
                       key=lambda f: (order.index(f.grading["task"]), f.__module__, f.__code__.co_firstlineno))
    tests_by_task, titles = {}, {}
    for function in functions:
        tests_by_task.setdefault(function.grading["task"], []).append(function.__name__)
        titles[function.__name__] = (function.grading["title"], function.grading["points"])
    return tests_by_task, titles


KEPT_RESULT_FILES = ("perf_metrics.csv", "loss_curves.png", "manifold.png", "manifold_digits.png", "model.pt")


def reference_results(assignment, target):
    """A trimmed copy of the reference results into target: what the grader reads (perf_metrics.csv,
    the first and last epoch's images, the manifold plots, the loss curves, model.pt: the
    grader recomputes the result files from it)."""
    source = assignment.solutions_dir / "results"
    missing = [r.folder for r in assignment.runs if r.dataset == "mnist" and not (source / r.folder).is_dir()]
    if missing:
        raise SetupError(f"{source} lacks {', '.join(missing)}: run `python -m autograder reference "
                         f"{assignment.name}` (and commit its results) first")
    for run in assignment.runs:
        folder = source / run.folder
        if not folder.is_dir():
            folder = cached_bonus_run(assignment, run)
        kept = [*KEPT_RESULT_FILES] + [f"{kind}_{e}.png" for kind in ("reconstruction", "sample")
                                       for e in (0, run.n_epochs - 1)]
        (target / run.folder).mkdir(parents=True)
        for name in kept:
            if (folder / name).is_file():
                shutil.copyfile(folder / name, target / run.folder / name)
    return target


def cached_bonus_run(assignment, run):
    """The results folder of a real run of the reference on a fake CelebA, made once and cached."""
    from .fakedata import __file__ as fakedata_file
    digest = hashlib.sha256(assignment.reference_file.read_bytes() + Path(fakedata_file).read_bytes()
                            + " ".join(run.argv()).encode()).hexdigest()[:16]
    cached = course_config.CACHE_DIR / "selfcheck" / f"{assignment.name}-{run.task}-{digest}" / run.folder
    if not cached.is_dir():
        log = cached.parent.parent / f"{cached.parent.name}.log"      # not with_suffix: the name holds "A.2"
        print(f"selfcheck: training the reference on a fake CelebA for the {run.task} results "
              f"(once; cached in {cached.parent}; log in {log})", flush=True)
        train_once(train_on_fake_celeba, (assignment, run, cached, log), cached, log,
                   "the reference's run on a fake CelebA")
    return cached


def train_once(target, args, cached, log, what):
    """Run target(*args), which trains and leaves its folder at cached, in a fresh interpreter (not a
    fork: the caller, pytest say, may have used torch's threads already), within 30 minutes."""
    log.parent.mkdir(parents=True, exist_ok=True)
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join(1800)
    if process.is_alive():
        process.kill()
        process.join()
    if process.exitcode != 0 or not cached.is_dir():
        raise SetupError(f"{what} failed; see {log}")


def train_on_fake_celeba(assignment, run, cached, log):
    """Train the reference vae.py as run says, on a fresh fake CelebA; move its folder to cached.
    Everything it prints goes to log."""
    from .fakedata import accept_fake_celeba, make_fake_celeba
    from ..authoring.reference import load_reference_module
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    module = load_reference_module(assignment)
    with tempfile.TemporaryDirectory(prefix="vaekit-fake-celeba-") as scratch:
        make_fake_celeba(Path(scratch) / "data", n_images=100)     # 10 test images: 8 are shown
        with accept_fake_celeba():
            folder = module.main(run.argv() + ["--data_dir", str(Path(scratch) / "data"),
                                               "--results_dir", str(Path(scratch) / "results"), "--device", "cpu"])
        partial = cached.parent.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        shutil.copytree(folder, partial / run.folder)
        partial.replace(cached.parent)          # atomic: never a half-written cache


def listen_on_loopback():
    """A TCP listener on 127.0.0.1 that no submission may reach; connections wait in its backlog."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def count_connections(listener):
    listener.setblocking(False)
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, OSError):
            return count
        connection.close()
        count += 1


# --- the state of the machine around the grading ----------------------------------------------

def kit_files():
    """{path: sha256} of the kit's files that git tracks or would track."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=KIT_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = [str(p.relative_to(KIT_ROOT)) for p in KIT_ROOT.rglob("*")
                  if p.is_file() and not SKIPPED_IN_KIT.intersection(p.parts)]
    digests = {}
    for name in filter(None, listed):
        path = KIT_ROOT / name
        digests[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return digests


def changed_in_kit(since):
    """Files under the kit's root (its .venv and caches included) modified since `since`."""
    changed = []
    for folder, dirs, files in os.walk(KIT_ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_IN_KIT]
        for name in files:
            path = Path(folder) / name
            try:
                if path.lstat().st_mtime >= since:
                    changed.append(path)
            except OSError:
                pass
    return changed


def processes():
    """{pid: (uid, parent pid, state, command line)} of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{entry}").st_uid
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
            found[int(entry)] = (uid, int(fields[1]), fields[0], command)
        except (OSError, IndexError, ValueError):
            pass
    return found


def leftover_processes(before, wait=3.0):
    """Processes that outlive the grading: new ones running with a worker's uid, or orphans the
    selfcheck (a child subreaper) adopted and that still run. Waits up to `wait` s for them to go."""
    deadline = time.monotonic() + wait
    while True:
        reap()
        left = {pid: info for pid, info in processes().items()
                if pid not in before and info[2] != "Z"
                and (info[0] in WORKER_UIDS or info[1] == os.getpid())}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


class DiskWatch:
    """The peak growth of the disk that holds the grader's scratch folders (/tmp) while sampled."""

    def __init__(self, path=None):
        self.path = path or tempfile.gettempdir()
        self.baseline = self.peak = shutil.disk_usage(self.path).used

    def sample(self):
        self.peak = max(self.peak, shutil.disk_usage(self.path).used)

    @property
    def growth(self):
        return self.peak - self.baseline


def become_subreaper():
    """Orphans of the graders' descendants become the selfcheck's children, where it can see them."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)     # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def forged_files(marker, places):
    """Files in places (searched to the depth given) that hold the hostile entries' marker."""
    found = []
    for place, recursive in places:
        if not place.is_dir():
            continue
        paths = place.rglob("*") if recursive else place.iterdir()
        for path in paths:
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_size < (8 << 20) \
                        and marker.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                pass
    return found


class Watch:
    """The isolation checks over the whole run: processes, connections, the kit, forged files, disk."""

    def __init__(self, listener, context, scratch):
        self.listener, self.context, self.scratch = listener, context, scratch

    def start(self):
        self.processes, self.kit, self.disk = set(processes()), kit_files(), DiskWatch()
        self.since = time.time()

    def stop(self):
        self.left = leftover_processes(self.processes)
        for pid in self.left:
            with_suppressed(os.kill, pid, signal.SIGKILL)
        reap()
        self.connections = count_connections(self.listener)
        self.listener.close()

    def problems(self):
        problems = [f"process {pid} (uid {uid}, state {state}: {command!r}) outlived its grading"
                    for pid, (uid, _, state, command) in self.left.items()]
        if self.connections:
            problems.append(f"{self.connections} connection(s) reached the loopback listener on port "
                            f"{self.context.port}")
        kit = kit_files()
        changed = sorted(name for name in set(self.kit) | set(kit) if self.kit.get(name) != kit.get(name))
        if changed:
            problems.append("the kit's checkout changed during the selfcheck: " + ", ".join(changed[:10]))
        touched = [str(p.relative_to(KIT_ROOT)) for p in changed_in_kit(self.since)]
        if touched:
            problems.append("files under the kit's root were written during the selfcheck: " + ", ".join(touched[:10]))
        places = [(self.scratch / "out", True), (Path(self.context.batch_out), True)]
        forged = forged_files(self.context.marker, places + [(p, False) for p in SCANNED_PLACES])
        if forged:
            problems.append("forged files found: " + ", ".join(map(str, forged[:10])))
        if self.disk.growth > MAX_DISK_GROWTH:
            problems.append(f"the disk of {self.disk.path} filled by {self.disk.growth >> 20} MB during the "
                            f"gradings (at most {MAX_DISK_GROWTH >> 20} MB expected): a submission wrote "
                            "outside its size-limited /tmp")
        return problems


# --- running the gradings, each in a process of its own ---------------------------------------

@dataclasses.dataclass
class Job:
    """A grading to run in a child process of its own."""
    name: str
    work: object                    # called in the child process
    timeout: float
    log: Path                       # where the child's output goes
    started: float = 0.0
    seconds: float = None
    status: int = None


def _start(job, close_fds):
    """Fork a child that runs job.work() with its output in job.log; returns its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        for fd in close_fds:
            os.close(fd)
        log = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        job.work()
        code = 0
    except BaseException:           # noqa: B036 (the child reports everything, then ends)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap():
    """Wait for every child that has ended; returns {pid: exit status}."""
    ended = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = os.waitstatus_to_exitcode(status)


def run_jobs(jobs, parallel, close_fds=(), on_tick=None):
    """Run jobs, `parallel` at once, each in a forked child; fills in their seconds and status.
    on_tick() is called every 50 ms or so while they run."""
    pending, running = list(jobs), {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                job.started = time.monotonic()
                running[_start(job, close_fds)] = job
            ended = reap()
            now = time.monotonic()
            for pid, status in ended.items():
                job = running.pop(pid, None)        # other pids: orphans adopted as subreaper
                if job is not None:
                    job.seconds, job.status = now - job.started, status
            for pid, job in running.items():
                if now - job.started > job.timeout:
                    with_suppressed(os.killpg, pid, signal.SIGKILL)
            if on_tick is not None:
                on_tick()
            if not ended:
                time.sleep(0.05)
    finally:                                    # interrupted: no grading goes on without us
        for pid in running:
            with_suppressed(os.killpg, pid, signal.SIGKILL)


def with_suppressed(function, *args):
    try:
        function(*args)
    except OSError:
        pass


def grade_job(assignment, entry, submission, out, probe_set):
    from ..engine.grade import grade_to
    bound = assignment.sandbox.wall_seconds + MARGIN_SECONDS
    return Job(entry.name, lambda: grade_to(assignment, submission, out, use_sandbox=True, probe_set=probe_set),
               timeout=2 * bound, log=out / "grader.log")


def batch_job(assignment, submissions, out):
    from ..engine.batch import run_batch
    return Job("batch", lambda: run_batch(assignment, submissions, out, jobs=3, use_sandbox=True),
               timeout=3 * (assignment.sandbox.wall_seconds * 2 + 120), log=out.parent / "batch.log")


# --- judging the outcomes ---------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    entry: catalog.Entry
    seconds: float = None
    bound: float = None
    tests: dict = dataclasses.field(default_factory=dict)      # test id -> passed
    scores: dict = dataclasses.field(default_factory=dict)     # task id -> points
    feedback: str = ""
    written: bool = False
    problems: list = dataclasses.field(default_factory=list)


def read_outcome(outcome, out):
    """Fill outcome from a grading's out folder (results.json, feedback.md)."""
    try:
        results = json.loads((out / "results.json").read_text())
        outcome.feedback = (out / "feedback.md").read_text()
    except (OSError, ValueError):
        outcome.problems.append(f"the grader wrote no readable results.json / feedback.md in {out}")
        return outcome
    outcome.written = True
    for test in results.get("tests", []):
        task, test_id = test["extra_data"]["task"], test["extra_data"]["test"]
        outcome.tests[test_id] = test["status"] == "passed"
        outcome.scores[task] = outcome.scores.get(task, 0) + test["score"]
    if not outcome.tests:
        outcome.problems.append(f"results.json holds no test: {results.get('output', '')[:300]}")
    return outcome


def read_batch_seconds(path):
    """{submission: seconds} from a batch's grades.csv."""
    import csv
    try:
        with open(path, newline="") as f:
            return {row["submission"]: float(row["seconds"]) for row in csv.DictReader(f)}
    except (OSError, KeyError, ValueError):
        return {}


def expected_points(expectation, task, reference, points, files):
    """The exact points an expectation asks for in task (None for "lose", which is a bound)."""
    exact = {"same": reference.get(task, 0), "max": points[task], "files": files[task],
             "code": points[task] - files[task]}
    if isinstance(expectation, int):
        return expectation
    return exact.get(expectation)


def judge(outcome, reference, points, files):
    """Add to outcome.problems what does not match the entry's expectations."""
    entry = outcome.entry
    if not outcome.written:
        return
    for task, total in points.items():
        if not total:
            continue
        expectation, got = entry.expectation(task), outcome.scores.get(task, 0)
        wanted = expected_points(expectation, task, reference, points, files)
        if expectation == "lose" and not got < reference.get(task, 0):
            outcome.problems.append(f"{task}: {got} points, must lose some of the reference's {reference.get(task, 0)}")
        elif expectation != "lose" and got != wanted:
            outcome.problems.append(f"{task}: {got} points, must be {wanted} ({expectation})")
    for phrase in entry.feedback:
        if phrase not in outcome.feedback:
            outcome.problems.append(f"feedback.md does not say {phrase!r}")
    if outcome.seconds is not None and outcome.seconds > outcome.bound:
        outcome.problems.append(f"graded in {outcome.seconds:.0f} s, past its bound of {outcome.bound:.0f} s")


def mutant_coverage(outcomes, test_ids):
    """{test id: [names of the mutants that fail it]}."""
    return {test_id: [o.entry.name for o in outcomes if o.entry.kind == "mutant" and o.tests.get(test_id) is False]
            for test_id in test_ids}


# --- the report -------------------------------------------------------------------------------

def columns_of(tests_by_task):
    """{test id: its column label}: the task's tests lettered a, b, c, ..."""
    return {test_id: chr(ord("a") + i) for tests in tests_by_task.values() for i, test_id in enumerate(tests)}


def print_report(outcomes, tests_by_task, titles, coverage, points):
    letters = columns_of(tests_by_task)
    print("\nHidden tests (the matrix's columns; '.' passed, 'x' failed, '?' not run):")
    for task, tests in tests_by_task.items():
        for test_id in tests:
            mutants = coverage.get(test_id, [])
            print(f"  {task + ':' + letters[test_id]:>7}  {titles[test_id][1]:>2} pt  {test_id:<38} "
                  f"failed by {len(mutants)} mutant(s)")
    width = max(len(o.entry.name) for o in outcomes) + 2
    groups = list(tests_by_task.items())
    print("\n" + " " * (width + 10) + " ".join(f"{task:<{len(tests)}}" for task, tests in groups))
    print(f"{'entry':<{width}}{'kind':<10}" + " ".join("".join(letters[t] for t in tests) for _, tests in groups))
    for outcome in outcomes:
        cells = " ".join("".join("?" if t not in outcome.tests else "." if outcome.tests[t] else "x" for t in tests)
                         for _, tests in groups)
        print(f"{outcome.entry.name:<{width}}{outcome.entry.kind:<10}{cells}")

    tasks = [task for task, total in points.items() if total]
    print("\nPoints per task: got / expected ('!' marks a failed expectation)")
    print(f"{'entry':<{width}}" + "".join(f"{task:<12}" for task in tasks) + "seconds")
    for outcome in outcomes:
        cells = []
        for task in tasks:
            expectation = outcome.entry.expectation(task)
            failed = any(p.startswith(f"{task}:") for p in outcome.problems)
            got = outcome.scores.get(task, "-") if outcome.written else "-"
            cells.append(f"{got!s:>2} {expectation!s:<7}{'!' if failed else ' '} ")
        seconds = f"{outcome.seconds:6.1f}" if outcome.seconds is not None else "     -"
        print(f"{outcome.entry.name:<{width}}" + "".join(cells) + seconds)


def summarize(outcomes, global_problems, uncovered, coverage_checked, started, fast, port):
    failed = [(o.entry.name, p) for o in outcomes for p in o.problems] + [("selfcheck", p) for p in global_problems]
    if failed:
        print("\nFailed expectations:")
        for name, problem in failed:
            print(f"  {name}: {problem}")
    kinds = {}
    for o in outcomes:
        kinds[o.entry.kind] = kinds.get(o.entry.kind, 0) + 1
    timed = [o for o in outcomes if o.seconds is not None]
    slowest = max(timed, key=lambda o: o.seconds) if timed else None
    print(f"\nselfcheck: {len(outcomes)} entries (" + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ")"
          f" graded in {time.monotonic() - started:.0f} s{' with --fast limits' if fast else ''}")
    print(f"failed expectations: {len(failed)}")
    if coverage_checked:
        print("hidden tests failed by no mutant: " + (", ".join(uncovered) if uncovered else "none"))
    else:
        print("hidden tests failed by no mutant: not checked (--only)")
    if slowest:
        print(f"slowest entry: {slowest.entry.name}, {slowest.seconds:.1f} s (bound {slowest.bound:.0f} s)")
    if not global_problems:
        print(f"isolation: no process outlived its grading, no connection reached 127.0.0.1:{port}, "
              "the kit's checkout is unchanged, no forged file was found, the scratch disk did not fill")
    return 1 if failed or uncovered else 0


# --- the whole selfcheck ----------------------------------------------------------------------

def select(entries, only):
    if not only:
        return entries
    unknown = set(only) - {e.name for e in entries}
    if unknown:
        raise SetupError(f"no catalog entry named {', '.join(sorted(unknown))}")
    return [e for e in entries if e.kind == "reference" or e.name in only]


def build_all(entries, assignment, context, results, scratch):
    """Build every entry's folder; the batch entries (and an honest reference) into one batch folder."""
    singles, batch_dir = [], scratch / "batch" / "submissions"
    for entry in entries:
        if entry.batch:
            catalog.build(entry, assignment, context, results, batch_dir / entry.name)
        else:
            singles.append((entry, catalog.build(entry, assignment, context, results,
                                                 scratch / "submissions" / entry.name)))
    if batch_dir.is_dir():
        reference = next(e for e in entries if e.kind == "reference")
        catalog.build(reference, assignment, context, results, batch_dir / HONEST)
    return singles, batch_dir if batch_dir.is_dir() else None


def check_batch(out, outcomes_by_name, reference_outcome):
    """The honest submission of the batch scores as the reference; grades.csv agrees with each result."""
    import csv
    problems = []
    honest = read_outcome(Outcome(reference_outcome.entry), out / HONEST)
    if honest.scores != reference_outcome.scores:
        problems.append(f"the honest submission in the batch got {honest.scores}, the reference alone "
                        f"{reference_outcome.scores}: the batch's hostile entries changed it")
    try:
        with open(out / "grades.csv", newline="") as f:
            rows = {row["submission"]: row for row in csv.DictReader(f)}
    except OSError:
        return problems + [f"the batch wrote no {out / 'grades.csv'}"]
    for name, outcome in [*outcomes_by_name.items(), (HONEST, honest)]:
        row = rows.get(name)
        if row is None or row.get("status") != "graded":
            problems.append(f"grades.csv has no graded row for {name}: {row}")
        elif float(row["total"]) != sum(outcome.scores.values()):
            problems.append(f"grades.csv gives {name} {row['total']} points, its results.json "
                            f"{sum(outcome.scores.values())}")
    return problems


def main(args):
    """The `selfcheck` command; returns the exit status."""
    assignment = course_config.get_assignment(args.assignment)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="vaekit-selfcheck-"))
    try:
        status = run_selfcheck(assignment, args, scratch, started)
    except (SetupError, catalog.CatalogError) as error:
        print(f"selfcheck: error: {error}", file=sys.stderr)
        status = 2
    if status == 1 or os.environ.get("VAEKIT_SELFCHECK_KEEP"):
        print(f"(the submissions and the grader's outputs are kept in {scratch})")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return status


def run_selfcheck(assignment, args, scratch, started):
    """Prepare, grade every selected entry, judge, report; returns the exit status."""
    from ..engine.grade import all_reference_observations
    bwrap = sandbox.bwrap_path()
    if bwrap is None or not sandbox.bwrap_works(bwrap):
        raise SetupError("bubblewrap (bwrap) is missing or cannot create namespaces here: the hostile entries "
                         "need the sandbox; install the Debian package 'bubblewrap'")
    only = args.only
    if getattr(args, "smoke", False):
        only = [*(only or []), *graders.catalog(assignment).SMOKE]
        args.only = only
    entries = select(catalog.entries_for(assignment), only)
    become_subreaper()
    results = reference_results(assignment, scratch / "reference-results")
    all_reference_observations(assignment)      # once here, not by every grader at once
    listener = listen_on_loopback()
    context = catalog.Context(port=listener.getsockname()[1], kit_root=str(KIT_ROOT),
                              batch_out=str(scratch / "batch" / "out"))
    singles, batch_dir = build_all(entries, assignment, context, results, scratch)

    watch = Watch(listener, context, scratch)
    parallel = args.jobs or os.cpu_count() or 1
    print(f"selfcheck: grading {len(entries)} catalog entries of {assignment.name}, {parallel} at once"
          f"{' (--fast limits)' if args.fast else ''}; outputs in {scratch}", flush=True)
    outcomes = grade_all(assignment, entries, singles, batch_dir, Path(context.batch_out), scratch / "out",
                         args.fast, parallel, watch, listener, getattr(args, "shift", 0))

    points, files = hidden_test_points(assignment)
    problems = check_points(assignment) + watch.problems()
    reference_outcome = next(o for o in outcomes if o.entry.kind == "reference")
    for outcome in outcomes:
        judge(outcome, reference_outcome.scores, points, files)
    if batch_dir is not None:
        batched = {o.entry.name: o for o in outcomes if o.entry.batch}
        problems += check_batch(Path(context.batch_out), batched, reference_outcome)

    if getattr(args, "load", 0):
        problems += compare_under_load(assignment, entries, singles, outcomes, scratch, args, parallel, listener)

    tests_by_task, titles = hidden_tests_by_task(assignment)
    coverage = mutant_coverage(outcomes, titles)
    uncovered = [t for t, mutants in coverage.items() if not mutants] if not args.only else []
    print_report(outcomes, tests_by_task, titles, coverage, points)
    return summarize(outcomes, problems, uncovered, not args.only, started, args.fast, context.port)


class _NoWatch:
    """What grade_all needs of a Watch, for the second (loaded) pass, whose isolation the first checked."""
    disk = types.SimpleNamespace(sample=lambda: None)

    def start(self):
        pass

    def stop(self):
        pass


def compare_under_load(assignment, entries, singles, idle_outcomes, scratch, args, parallel, listener):
    """Grade the single entries again while args.load processes spin on every CPU they can get, and
    return a problem for each entry whose per-task scores differ from the idle pass (grades must not
    depend on how busy the machine is)."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(args.load)]
    started = time.monotonic()
    try:
        loaded = grade_all(assignment, entries, singles, None, scratch / "batch-unused", scratch / "out-loaded",
                           args.fast, parallel, _NoWatch(), listener, getattr(args, "shift", 0))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    problems = []
    for idle, busy_outcome in zip(idle_outcomes, loaded):
        if not idle.entry.batch and idle.scores != busy_outcome.scores:
            problems.append(f"{idle.entry.name} scored {busy_outcome.scores} with {args.load} busy processes "
                            f"beside it, {idle.scores} on the idle machine")
    print(f"\nunder load: {sum(not o.entry.batch for o in loaded)} entries graded again with {args.load} busy "
          f"processes in {time.monotonic() - started:.0f} s; "
          + (f"{len(problems)} scored differently" if problems else "every score is the idle pass's"), flush=True)
    return problems


def grade_all(assignment, entries, singles, batch_dir, batch_out, out_dir, fast, parallel, watch, listener, shift=0):
    """Grade the single entries (each by grade_to, with --fast limits if asked) and the batch (by
    run_batch, with the course's limits); returns an Outcome per entry, in the catalog's order."""
    from ..engine.grade import probe_seeds
    limited = dataclasses.replace(assignment, sandbox=fast_limits(assignment.sandbox)) if fast else assignment
    jobs, outcomes = [], {}
    # each entry gets the probe set of its place in the whole catalog (+ shift), modulo the sets: runs
    # compare, the catalog as a whole is graded with every set, and shifts try each entry on others
    sets = len(probe_seeds(assignment))
    place = {e.name: i for i, e in enumerate(catalog.entries_for(assignment))}
    if batch_dir is not None:
        jobs.append(batch_job(assignment, batch_dir, batch_out))
    for entry, folder in sorted(singles, key=lambda pair: pair[0].kind != "hostile"):   # the slow ones first
        (out_dir / entry.name).mkdir(parents=True)
        jobs.append(grade_job(limited, entry, folder, out_dir / entry.name, (place[entry.name] + shift) % sets))
        outcomes[entry.name] = Outcome(entry, bound=limited.sandbox.wall_seconds + MARGIN_SECONDS)
    watch.start()
    open_fds = tuple(fd for fd in (listener.fileno(),) if fd >= 0)      # closed after the first pass
    run_jobs(jobs, parallel, close_fds=open_fds, on_tick=watch.disk.sample)
    watch.stop()

    for job in jobs:
        if job.name in outcomes:
            outcomes[job.name].seconds = job.seconds
            read_outcome(outcomes[job.name], out_dir / job.name)
    batch_seconds = read_batch_seconds(batch_out / "grades.csv")
    for entry in entries:
        if entry.batch:
            outcome = Outcome(entry, seconds=batch_seconds.get(entry.name),
                              bound=assignment.sandbox.wall_seconds + MARGIN_SECONDS)
            outcomes[entry.name] = read_outcome(outcome, batch_out / entry.name)
    return [outcomes[e.name] for e in entries]
