"""Grade one submission: find its files, observe its code in the sandboxed worker, judge the
observations with the hidden tests (in this process), write results.json and feedback.md.
"""

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

import course_config
from .. import graders
from . import judge, sandbox
MAX_FILE_BYTES = 50 << 20           # a file larger than this in a submission is not copied
MAX_SUBMISSION_BYTES = 400 << 20
SKIPPED_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", "data", ".venv", "venv", "node_modules", "__MACOSX"}


# --- finding the submission's files -----------------------------------------------------------

@dataclasses.dataclass
class Submission:
    root: Path                  # the grader's own copy of the submission
    code: Path = None           # the file graded as the student file
    results: Path = None        # the results/ folder
    notebook: Path = None
    messages: list = dataclasses.field(default_factory=list)    # for the student, about the files


def copy_submission(source, target):
    """Copy a submission folder, skipping links, huge files and tool folders. Returns notes."""
    notes, total = [], 0
    source = Path(source)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if SKIPPED_DIRS.intersection(relative.parts[:-1]) or path.name in SKIPPED_DIRS:
            continue
        if path.is_symlink():
            notes.append(f"`{relative}` is a symbolic link and was ignored.")
            continue
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
            continue
        if not path.is_file():
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES or total + size > MAX_SUBMISSION_BYTES:
            notes.append(f"`{relative}` is too large ({size >> 20} MB) and was ignored.")
            continue
        total += size
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)
    return notes


def _near(root, depth=1):
    """Folders to look in: the top, then (for a zip unpacked into a folder) one level down."""
    folders = [root]
    if depth:
        folders += sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIPPED_DIRS | {"results"})
    return folders


def locate(root, assignment):
    """Find the student file (or a misnamed copy of it), results/ and the notebook in a submission copy."""
    found = Submission(root=root)
    name = assignment.student_file
    stem = Path(name).stem
    for folder in _near(root):
        if (folder / name).is_file():
            found.code = folder / name
            if folder != root:
                found.messages.append(f"`{name}` was found in the folder `{folder.relative_to(root)}/`; "
                                      "it was graded from there.")
            break
    if found.code is None:
        misnamed = sorted(p for folder in _near(root) for p in folder.iterdir()
                          if p.is_file() and re.fullmatch(rf"(?i){stem}[\s_\-()\d]*\.py(\.txt)?", p.name))
        if misnamed:
            found.code = misnamed[0]
            found.messages.append(f"There is no `{name}`, but `{misnamed[0].relative_to(root)}` looks like it "
                                  f"and was graded in its place: name the file exactly `{name}` next time.")
        else:
            python_files = sorted(str(p.relative_to(root)) for f in _near(root) for p in f.glob("*.py"))
            found.messages.append(f"No `{name}` was found in the submission"
                                  + (f" (Python files seen: {', '.join(python_files[:5])})" if python_files else "")
                                  + f": the code tasks could not be graded. Hand in `{name}` at the top of "
                                    "the submission.")
    if found.code is not None and not found.code.read_bytes().strip():
        found.messages.append(f"`{found.code.relative_to(root)}` is empty (was it saved before handing in?): "
                              "the code tasks could not be graded.")
    base = found.code.parent if found.code else root
    for candidate in (base / "results", root / "results"):
        if candidate.is_dir():
            found.results = candidate
            break
    else:
        found.messages.append(f"No `results/` folder was found next to {name}: the result files could not "
                              "be graded.")
    for candidate in (base / assignment.notebook, root / assignment.notebook):
        if candidate.is_file():
            found.notebook = candidate
            break
    found.messages += check_notebook(found.notebook, assignment)
    return found


SUSPICIOUS = {
    "the grader's probes": r"\bprobes\b|\bPROBES\b|/grader\b|hidden_tests|autograder",
    "the calling frames": r"_getframe|\bf_locals\b|\bf_back\b|__closure__|inspect\.stack",
    "the garbage collector's objects": r"gc\.get_(objects|referrers|referents)",
    "raw file descriptors": r"/proc/self/fd|os\.write\s*\(\s*\d|os\.fdopen\s*\(\s*\d",
    "ctypes": r"\bctypes\b",
}


def suspicious_code(path):
    """Names of the grader internals a submission's source refers to (for the instructor's eyes)."""
    try:
        text = Path(path).read_bytes()[:2_000_000].decode("utf-8", errors="replace")
    except OSError:
        return []
    return [what for what, pattern in SUSPICIOUS.items() if re.search(pattern, text)]


MAX_NOTEBOOK_BYTES = 20 << 20


def check_notebook(path, assignment):
    """Messages about the notebook, whose answers are graded by hand."""
    if path is None:
        return [f"No `{assignment.notebook}` was found: your written answers and plots (graded by hand) "
                "live there, so hand it in too."]
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:            # never parsed whole: a huge notebook would cost the grader GBs
        return [f"`{assignment.notebook}` is {size >> 20} MB, more than the {MAX_NOTEBOOK_BYTES >> 20} MB the "
                "grader opens: clear the large outputs (Kernel > Restart & Clear Output, then run only what the "
                "answers need) and resubmit. The code was graded anyway."]
    try:
        notebook = json.loads(path.read_bytes().decode("utf-8-sig"))
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise ValueError("it has no list of cells")
    except (ValueError, UnicodeDecodeError, RecursionError) as error:      # RecursionError: [[[[...
        return [f"`{assignment.notebook}` is not a readable notebook ({str(error)[:120]}): the graders cannot "
                "open your written answers; save it again from Jupyter and resubmit. The code was graded anyway."]
    return []


# --- observing and judging --------------------------------------------------------------------

def worker_job(assignment):
    """What the worker needs to know of the assignment: its probes, its student file, the kit's
    helper modules that the student file imports."""
    return sandbox.WorkerJob(probe_dir=graders.probe_dir(assignment), student_file=assignment.student_file,
                             helper_files=tuple(str(p) for p in assignment.helper_paths))


# --- the secret probe sets --------------------------------------------------------------------
# The probes' inputs and weights come from a seed. A public seed would let a submission carry a
# table of answers made elsewhere for exactly those inputs; so each kit draws its own seeds with
# `secrets` (PROBE_SETS of them, kept where the worker cannot read: the kit's cache, or the
# Gradescope package's root-only reference data), and every grading picks one at random. The
# set's number (never its seed) is in results.json, and `grade --probe-set N` grades with it again.

def _seeds_file(assignment):
    return course_config.CACHE_DIR / f"probe-seeds-{assignment.name}.json"


def _write_private(path, text):
    """Write text to path as one atomic step, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(text)
    partial.replace(path)                   # concurrent graders never read half a file


def _shipped_data(assignment):
    """The package's reference data ({"probe_sets": [{"seed", "observations"}]}), where the reference
    source is not shipped (Gradescope); else None."""
    if assignment.reference_file.is_file() or not shipped_observations(assignment).is_file():
        return None
    return json.loads(shipped_observations(assignment).read_text())


def probe_seeds(assignment):
    """The kit's secret probe seeds, drawn once per kit with `secrets` (or the shipped ones)."""
    shipped = _shipped_data(assignment)
    if shipped is not None:
        return [probe_set["seed"] for probe_set in shipped["probe_sets"]]
    path, wanted = _seeds_file(assignment), assignment.seeds.probe_sets
    try:
        seeds = json.loads(path.read_text())["seeds"]
    except (OSError, ValueError, KeyError):
        seeds = []
    if len(seeds) != wanted:
        seeds = [secrets.randbelow(2 ** 31 - 1) for _ in range(wanted)]
        _write_private(path, json.dumps({"seeds": seeds}))
        seeds = json.loads(path.read_text())["seeds"]      # a concurrent grader's draw wins alike for both
    return seeds


def choose_probe_set(assignment, pinned=None):
    """The probe set a grading uses: pinned (a regrade), else one drawn at random."""
    count = len(probe_seeds(assignment))
    if pinned is None:
        return secrets.randbelow(count)
    if not 0 <= pinned < count:
        raise ValueError(f"there is no probe set {pinned}: this kit has sets 0 to {count - 1}")
    return pinned


def _observations_digest(assignment, seed):
    """Changes whenever anything that determines the reference observations changes: the worker,
    the probes and their inputs, the reference source, the helper modules, the seed, torch."""
    import torch
    digest = hashlib.sha256()
    for path in [*sorted(sandbox.WORKER_DIR.glob("*.py")), *sorted(graders.probe_dir(assignment).glob("*.py")),
                 assignment.reference_file, *assignment.helper_paths]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{seed} {torch.__version__}".encode())
    return digest.hexdigest()[:16]


def shipped_observations(assignment):
    """Where a package without the reference's source (Gradescope) holds its observations."""
    return sandbox.KIT_ROOT / "reference_data" / f"{assignment.name}.json"


def reference_observations(assignment, probe_set, refresh=False):
    """The probes run on the reference solution with the probe set's seed, cached per kit version
    (never typed in); where the reference's source is not shipped, those made when the package was built."""
    shipped = _shipped_data(assignment)
    if shipped is not None:
        return judge.Observations(sandbox.WorkerResult(observations=shipped["probe_sets"][probe_set]["observations"]))
    seed = probe_seeds(assignment)[probe_set]
    cache = course_config.CACHE_DIR / f"reference-{assignment.name}-{_observations_digest(assignment, seed)}.json"
    if cache.is_file() and not refresh:
        return judge.Observations(sandbox.WorkerResult(observations=json.loads(cache.read_text())))
    names = graders.probe_names(assignment)
    result = sandbox.run_worker(assignment.reference_file, names, seed,
                                assignment.sandbox, worker_job(assignment), use_sandbox=False)
    failed = {k: v["error"] for k, v in result.observations.items() if not v["ok"]}
    if result.import_error or failed or len(result.observations) != len(names):
        raise RuntimeError(f"the reference solution failed its own probes: {result.import_error or failed}; "
                           f"printed: {result.printed_tail[-2000:]}")
    _write_private(cache, json.dumps(result.observations))
    return judge.Observations(result)


def all_reference_observations(assignment, refresh=False):
    """Every probe set's reference observations, computed once (before a batch, or for a package)."""
    return [reference_observations(assignment, index, refresh) for index in range(len(probe_seeds(assignment)))]


def load_bands(assignment):
    """The tolerance bands of the reference runs (solutions/<name>/metrics.json), or None."""
    path = assignment.solutions_dir / "metrics.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def evidence_module(assignment):
    """The assignment's evidence probes (graders/<name>/evidence/probes.py), or None."""
    import importlib
    folder = graders.folder(assignment) / "evidence"
    if not (folder / "probes.py").is_file():
        return None
    return importlib.import_module(f"{graders.__name__}.{assignment.name}.evidence.probes")


def run_evidence(assignment, results_dir, use_sandbox=True):
    """Run the assignment's evidence probes, if it has any, in the sandboxed worker on the submitted
    results/ (read-only) and the course's data: they recompute the result files from the submitted
    model and never import the student's code. Returns {probe name: observation}, or None."""
    module = evidence_module(assignment)
    if module is None or results_dir is None:
        return None
    context = {"runs": {run.task: {**dataclasses.asdict(run), "folder": run.folder} for run in assignment.runs},
               "seeds": dataclasses.asdict(assignment.seeds), "image_side": dict(assignment.image_side)}
    mounts = [(results_dir, "results")]
    for part in getattr(module, "DATA_FILES", ()):
        if (course_config.SHARED_DATA_DIR / part).is_dir():
            mounts.append((course_config.SHARED_DATA_DIR / part, f"data/{part}"))
    with tempfile.TemporaryDirectory(prefix="kit-evidence-") as job_dir:
        job_file = Path(job_dir) / "evidence_job.py"
        job_file.write_text(f"import json\nCONTEXT = json.loads({json.dumps(context)!r})\n")
        job = sandbox.WorkerJob(probe_dir=Path(module.__file__).parent, student_file=job_file.name,
                                mounts=tuple(mounts))
        result = sandbox.run_worker(job_file, sorted(module.PROBES), 0,
                                    assignment.sandbox, job, use_sandbox=use_sandbox)
    if result.import_error:
        raise RuntimeError(f"the evidence probes could not start: {result.import_error}")
    return result.observations


class ResultFiles:
    """The submission's results/ folder as the hidden tests see it. evidence: the evidence
    probes' observations (None when the assignment has none); notes: lines the tests add to the
    feedback's "About your files" (a check skipped, and why)."""

    def __init__(self, results_dir, assignment, metrics, evidence=None):
        self.results_dir = results_dir
        self.assignment = assignment
        self.metrics = metrics or {}
        self.evidence_observations = evidence
        self.notes = []

    def evidence(self, task_id):
        """The evidence probe's value for task_id, or None when there are no evidence probes."""
        if self.evidence_observations is None:
            return None
        observed = self.evidence_observations.get(task_id)
        if observed is None:                # no evidence probe for this task's run
            return None
        if not observed.get("ok"):
            judge.fail("the grader could not recompute this run's results from its model.pt ("
                       + str(observed.get("error")) + ")")
        return observed["value"]

    def note(self, line):
        if line not in self.notes:
            self.notes.append(line)

    def run(self, task_id):
        return self.assignment.run(task_id)

    def folder(self, task_id):
        run = self.run(task_id)
        if self.results_dir is None:
            judge.fail("no results/ folder was found in your submission")
        path = self.results_dir / run.folder
        if not path.is_dir():
            others = sorted(p.name for p in self.results_dir.iterdir() if p.is_dir())
            judge.fail(f"results/{run.folder}/ is missing"
                       + (f" (results/ holds: {', '.join(others[:4])}; trained with other settings?)" if others else ""))
        return path

    def band(self, task_id, column):
        band = self.metrics.get("bands", {}).get(task_id, {}).get(column)
        return (band["low"], band["high"]) if band else None


class GradingPlugin:
    """Gives the hidden tests their fixtures and records each test's outcome."""

    def __init__(self, assignment, student, reference, results, seed):
        self.assignment, self._student, self._reference, self._results = assignment, student, reference, results
        self._seed = seed
        self.items, self.outcomes, self.internal_errors = {}, {}, []

    @pytest.fixture
    def student(self):
        return self._student

    @pytest.fixture
    def reference(self):
        return self._reference

    @pytest.fixture
    def results(self):
        return self._results

    @pytest.fixture
    def tol(self):
        return self.assignment.tolerances

    @pytest.fixture
    def seed(self):
        return self._seed

    def pytest_sessionstart(self, session):
        judge.start_grading()

    def pytest_runtest_setup(self, item):
        grading = getattr(item.function, "grading", None)
        if grading:
            judge.start_test(grading["task"], grading["title"])

    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.items[item.nodeid] = item

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed and item.nodeid not in self.outcomes:
            error = call.excinfo.value if call.excinfo is not None else None
            if isinstance(error, pytest.fail.Exception):
                self.outcomes[item.nodeid] = ("failed", str(error.msg))
            else:
                self.outcomes[item.nodeid] = ("failed", "internal grader error in this check; your instructor "
                                                        "has been told")
                self.internal_errors.append(f"{item.nodeid}: {type(error).__name__}: {error}")
        elif report.when == "call" and report.skipped and item.nodeid not in self.outcomes:
            # a hidden test that skips failed because of an earlier test's mistake: not charged again
            error = call.excinfo.value if call.excinfo is not None else None
            self.outcomes[item.nodeid] = ("not charged", str(getattr(error, "msg", error)))
        elif report.when == "call" and report.passed:
            self.outcomes.setdefault(item.nodeid, ("passed", ""))
        return report


def hidden_tests(assignment):
    """(nodeid-less) list of (module, function) of the hidden tests, for listings and checks."""
    tests = []
    for path in sorted(graders.hidden_tests_dir(assignment).glob("test_*.py")):
        module = graders.hidden_test_module(assignment, path.stem)
        tests += [(path.stem, getattr(module, n)) for n in dir(module)
                  if n.startswith("test_") and hasattr(getattr(module, n), "grading")]
    return tests


def run_hidden_tests(assignment, student, reference, results, seed):
    plugin = GradingPlugin(assignment, student, reference, results, seed)
    hidden = graders.hidden_tests_dir(assignment)
    args = [str(hidden), "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--import-mode=importlib",
            "-c", str(hidden / "pytest.ini"), "--rootdir", str(hidden), "-W", "ignore"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the hidden tests could not run (pytest exit {code}):\n{printed.getvalue()[-3000:]}")
    tests = []
    if plugin.internal_errors:
        print("error: internal errors in the hidden tests:\n  " + "\n  ".join(plugin.internal_errors), file=sys.stderr)
    for nodeid, item in plugin.items.items():
        grading = item.function.grading
        outcome, message = plugin.outcomes.get(nodeid, ("failed", "this test did not run"))
        if outcome == "not charged" and not judge.waiver_holds(grading["title"]):
            outcome = "failed"          # the mistake it blamed was not recognised: no point without the check
        tests.append({"id": item.function.__name__, "task": grading["task"], "title": grading["title"],
                      "max_score": grading["points"], "passed": outcome in ("passed", "not charged"),
                      "not_charged": outcome == "not charged", "message": message})
    order = {t.id: i for i, t in enumerate(assignment.tasks)}
    return sorted(tests, key=lambda t: order[t["task"]])       # stable: file order within a task


# --- the whole grading ------------------------------------------------------------------------

def grade_submission(assignment, submission_dir, use_sandbox=True, probe_set=None):
    """Grade a submission folder with a probe set (pinned, or drawn at random); returns
    (results.json dict, feedback.md text, instructor notes)."""
    started = time.monotonic()
    instructor = []
    with tempfile.TemporaryDirectory(prefix="kit-submission-") as scratch:
        scratch = Path(scratch)
        copy_notes = copy_submission(submission_dir, scratch)
        found = locate(scratch, assignment)
        found.messages = copy_notes + found.messages
        probe_set = choose_probe_set(assignment, probe_set)
        seed = probe_seeds(assignment)[probe_set]
        reference = reference_observations(assignment, probe_set)
        worker = None
        if found.code is None:
            student = judge.Observations(unavailable=f"there is no {assignment.student_file} to test")
        else:
            worker = sandbox.run_worker(found.code, graders.probe_names(assignment), seed,
                                        assignment.sandbox, worker_job(assignment), use_sandbox=use_sandbox)
            if worker.tampered:
                student = judge.Observations(unavailable=(
                    f"{assignment.student_file} replaced functions of the grader or of torch that the tests rely "
                    "on, so none of its observations can be trusted; your instructor will look at it"))
                instructor.append(f"warning: {submission_dir}: {assignment.student_file} tampered with the "
                                  f"grader ({worker.tampered}): its code tasks scored 0; review it.")
            elif worker.import_error:
                student = judge.Observations(unavailable=f"{assignment.student_file} could not be imported: "
                                                         f"{worker.import_error}")
            else:
                student = judge.Observations(worker)
            flags = suspicious_code(found.code)
            if flags:
                instructor.append(f"warning: {submission_dir}: {assignment.student_file} refers to "
                                  f"{', '.join(flags)}, which honest code has no use for: review it.")
        metrics = load_bands(assignment)
        if metrics and not metrics.get("standard_split", False):
            instructor.append(f"warning: the loss bands in {assignment.solutions_dir / 'metrics.json'} come from "
                              f"reference runs on {metrics.get('dataset', 'an unknown data set')}, not on the "
                              "standard train/test split of the course's data; rerun `python -m autograder "
                              "reference` on the full data.")
        if metrics is None:
            instructor.append("warning: no reference metrics (solutions/.../metrics.json): final losses are only "
                              "checked for going down.")
        result_files = ResultFiles(found.results, assignment, metrics, run_evidence(assignment, found.results, use_sandbox))
        tests = run_hidden_tests(assignment, student, reference, result_files, seed)
        found.messages += result_files.notes
    seconds = time.monotonic() - started
    results = build_results(assignment, tests, found, worker, seconds)
    results["extra_data"] = {"probe_set": probe_set}
    return results, build_feedback(assignment, tests, found, worker), instructor


def _manual_lines(assignment):
    return [f"{t.id} ({t.manual_points} points, graded by hand): {t.manual}"
            for t in assignment.tasks if t.manual_points]


def score_line(assignment, tests):
    """The one total a student reads everywhere (results.json and feedback.md): the required tasks'
    autograded points of their maximum, the bonus on top, and what is graded by hand."""
    bonus = {t.id for t in assignment.tasks if t.bonus}
    required = sum(t["max_score"] for t in tests if t["passed"] and t["task"] not in bonus)
    extra = sum(t["max_score"] for t in tests if t["passed"] and t["task"] in bonus)
    required_max = sum(t.auto_points for t in assignment.tasks if not t.bonus)
    bonus_max = sum(t.auto_points for t in assignment.tasks if t.bonus)
    manual = sum(t.manual_points for t in assignment.tasks if not t.bonus)
    manual_bonus = sum(t.manual_points for t in assignment.tasks if t.bonus)
    return (f"Autograded: {required} of {required_max} points" + (f", plus {extra} of {bonus_max} bonus points"
                                                                   if bonus_max else "")
            + f". Not counted yet: {manual} points of written answers and plots"
            + (f" (and {manual_bonus} bonus points)" if manual_bonus else "") + ", graded by hand.")


def build_results(assignment, tests, found, worker, seconds):
    """results.json in Gradescope's autograder schema."""
    score = sum(t["max_score"] for t in tests if t["passed"])
    lines = [score_line(assignment, tests) + " What is graded by hand:"]
    lines += ["  " + line for line in _manual_lines(assignment)]
    lines += found.messages
    if worker is not None:
        lines.append(worker.isolation)
        lines += [f"note: {note}" for note in worker.notes]
    return {
        "score": score,
        "execution_time": round(seconds, 1),
        "output": "\n".join(lines),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{
            "name": f"{t['task']} {t['title']}",
            "score": t["max_score"] if t["passed"] else 0,
            "max_score": t["max_score"],
            "status": "passed" if t["passed"] else "failed",
            "output": ("Not charged: " + t["message"]) if t.get("not_charged") else "" if t["passed"] else t["message"],
            "visibility": "visible",
            "extra_data": {"task": t["task"], "test": t["id"]},
        } for t in tests],
    }


def build_feedback(assignment, tests, found, worker):
    """feedback.md: per task, what passed, what failed and a hint for each failure."""
    lines = [f"# Feedback on your {assignment.name} submission", "", score_line(assignment, tests), ""]
    if found.messages:
        lines += ["## About your files", ""] + [f"- {m}" for m in found.messages] + [""]
    hints = {}                  # a failure message -> the title of the first test that gave it
    for task in assignment.tasks:
        task_tests = [t for t in tests if t["task"] == task.id]
        lines += [f"## {task.id} {task.title}" + (" (bonus)" if task.bonus else ""), ""]
        if task_tests:
            earned = sum(t["max_score"] for t in task_tests if t["passed"])
            lines += [f"Autograded: {earned} of {task.auto_points} points.", ""]
            for t in task_tests:
                mark = "not charged" if t.get("not_charged") else "passed" if t["passed"] else "FAILED"
                lines.append(f"- {mark}: {t['title']} ({t['max_score']} pt)")
                if t.get("not_charged"):
                    lines.append(f"  - It {t['message']}.")
                elif not t["passed"]:
                    if t["message"] in hints:        # one cause failing several tests: said once
                        lines.append(f"  - Hint: the same as for \"{hints[t['message']]}\" above.")
                    else:
                        hints[t["message"]] = t["title"]
                        lines.append(f"  - Hint: {t['message']}")
            lines.append("")
        if task.manual_points:
            lines += [f"Graded by hand ({task.manual_points} points): {task.manual}.", ""]
    if worker is not None and worker.printed_bytes:
        lines += ["## What your code printed while being tested", "",
                  f"{worker.printed_bytes} bytes; the end of it:", "", "```",
                  worker.printed_tail[-1500:].replace("```", "'''"), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def task_scores(results):
    """{task id: points earned} of a results.json dict."""
    scores = {}
    for test in results["tests"]:
        task = test["extra_data"]["task"]
        scores[task] = scores.get(task, 0) + test["score"]
    return scores


def make_reference_submission(assignment, folder):
    """A submission folder as a student would hand in the reference: the student file, the notebook and
    the committed reference results (when there are any). Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(assignment.reference_file, folder / assignment.student_file)
    shutil.copyfile(assignment.source_dir / assignment.notebook, folder / assignment.notebook)
    results = assignment.solutions_dir / "results"
    if results.is_dir():
        shutil.copytree(results, folder / "results")
    return folder


def write_outputs(out_dir, results, feedback):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # whatever the submission's file names or bytes (lone surrogates included), both files are written
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8",
                                          errors="backslashreplace")
    (out_dir / "feedback.md").write_text(feedback, encoding="utf-8", errors="backslashreplace")


def grade_to(assignment, submission_dir, out_dir, use_sandbox=True, probe_set=None):
    """grade_submission + write_outputs; an internal failure still writes a result saying so."""
    try:
        results, feedback, instructor = grade_submission(assignment, submission_dir, use_sandbox, probe_set)
    except Exception as error:          # the grader's own failure: say so, never leave nothing behind
        import traceback
        results = {"score": 0, "execution_time": 0, "tests": [], "visibility": "visible",
                   "output": f"The autograder failed on this submission ({type(error).__name__}: {error}); "
                             "this is not your fault. Your instructor has been told."}
        feedback = "# Feedback\n\nThe autograder failed on this submission; your instructor will grade it.\n"
        instructor = ["error: the grader failed:\n" + traceback.format_exc()]
    write_outputs(out_dir, results, feedback)
    for line in instructor:
        print(sandbox.clean_text(line).encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
    return results
