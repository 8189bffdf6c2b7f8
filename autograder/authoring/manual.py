"""Manual grading: nbgrader's formgrader on the students' own notebooks, merged with the autograder.

The hand-graded part (derivation, plots, written comparisons) lives in the students' notebooks. This
module runs that part in an nbgrader course folder of its own (default build/manual/ASSIGNMENT),
never in the kit's release/:

  collect     the gradebook is filled from the released notebook (grade ids from the notebook, points
              from course_config; the bonus cell is worth 0 so that its points are extra credit), and
              each submission's notebook is copied to submitted/STUDENT/ASSIGNMENT/.
  autograde   nbgrader's autograde with the students' outputs KEPT: no clearing, no re-execution (the
              figures they made are what is graded; vae.py is not even there to re-run).
  formgrader  a Jupyter server on 127.0.0.1 with nbgrader's formgrader, to grade the manual cells.
  merge       the batch's grades.csv plus the gradebook's manual scores: one CSV per student and task,
              one feedback file per student holding both parts, optionally Gradescope results.json.
  status      what is collected, autograded and still to grade by hand.
"""

import atexit
import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import course_config

from .. import KIT_ROOT

DEFAULT_COURSE = Path(KIT_ROOT) / "build" / "manual"

NBGRADER_CONFIG = '''"""nbgrader configuration of this manual-grading course (written by `python -m autograder manual`)."""
import sys
sys.path.insert(0, {kit!r})
from autograder.authoring.manual import configure_manual_course

configure_manual_course(get_config(), {course!r})  # noqa: F821 (get_config is provided by nbgrader)
'''


class ManualError(Exception):
    """The manual-grading step cannot go on; the message says what to do."""


def grade_id(task_id):
    """The notebook's grade id of a task's hand-graded cell, e.g. 'B.1' -> 'B1-manual'."""
    return task_id.replace(".", "") + "-manual"


def course_dir(assignment, course=None):
    return Path(course) if course else DEFAULT_COURSE / assignment.name


def configure_manual_course(c, course):
    """nbgrader config of a manual-grading course folder: the kit's settings, the gradebook inside the
    folder, and an autograde that keeps the students' outputs."""
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, DeduplicateIds,
                                        OverwriteCells, OverwriteKernelspec, SaveAutoGrades)
    course_config.configure_nbgrader(c, root=course, db_dir=course)
    c.Exchange.root = str(Path(course) / "exchange")    # unused here; keeps nbgrader off /usr/local/share
    # nbgrader's defaults start with ClearOutput and Execute: they would erase the students' figures
    # and re-run the notebook without vae.py. Keep the cell checks and the score bookkeeping only.
    c.Autograde.sanitize_preprocessors = [DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
    c.Autograde.autograde_preprocessors = [SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    return c


def _config(course):
    from traitlets.config import Config
    return configure_manual_course(Config(), str(course))


def _api(course):
    from nbgrader.apps import NbGraderAPI
    # nbgrader's gradebook runs the `alembic` command, which sits beside this Python.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return NbGraderAPI(config=_config(course))


def manual_tasks(assignment):
    """{grade id: task} of the tasks a person grades."""
    return {grade_id(t.id): t for t in assignment.tasks if t.manual_points}


def gradebook_notebook(assignment):
    """The released notebook, its hand-graded cells set as nbgrader should count them: points from
    course_config, each cell counted once (a cell that is both 'grade' and 'task' becomes a task), the
    bonus cell worth 0 (its points are entered as extra credit)."""
    path = assignment.release_dir / assignment.notebook
    if not path.is_file():
        raise ManualError(f"{path} is missing: run `python -m autograder release {assignment.name}` first.")
    notebook = json.loads(path.read_text(encoding="utf-8"))
    tasks = manual_tasks(assignment)
    seen = set()
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = meta.get("grade_id")
        if gid in tasks and (meta.get("grade") or meta.get("task")):
            task = tasks[gid]
            meta["points"] = 0 if task.bonus else task.manual_points
            if meta.get("grade") and meta.get("task"):
                meta["grade"] = False
            meta.pop("checksum", None)
            seen.add(gid)
    missing = sorted(set(tasks) - seen)
    if missing:
        raise ManualError(f"{path} has no hand-graded cell for {', '.join(missing)}: regenerate the release.")
    return notebook


def setup(assignment, course=None):
    """Create the course folder and fill its gradebook with the assignment (idempotent)."""
    course = course_dir(assignment, course)
    source = course / course_config.SOURCE_DIR / assignment.name
    source.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(kit=str(KIT_ROOT), course=str(course)))
    text = json.dumps(gradebook_notebook(assignment), indent=1, ensure_ascii=False) + "\n"
    target = source / assignment.notebook
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    result = _api(course).generate_assignment(assignment.name, force=True, create=True)
    if not result["success"]:
        raise ManualError(f"nbgrader could not fill the gradebook:\n{result['error']}\n{result['log']}")
    return course


# --- Collecting submissions -------------------------------------------------------------------

def student_id(name):
    """The student id of a submission named name: the name of its output folder in a batch."""
    from ..engine.batch import safe_name
    return safe_name(Path(name).stem if name.lower().endswith(".zip") else name)


def _gradescope_submissions(export):
    """(student id, folder) of a Gradescope 'Download Submissions' export: submission_metadata.yml
    names each submission_<id>/ folder's submitters (the first submitter's sid, else email, else name)."""
    import yaml
    metadata = yaml.safe_load((export / "submission_metadata.yml").read_text(encoding="utf-8")) or {}
    found = []
    for folder, record in sorted(metadata.items()):
        submitters = (record or {}).get(":submitters") or [{}]
        first = submitters[0]
        who = first.get(":sid") or first.get(":email") or first.get(":name") or folder
        found.append((student_id(str(who)), export / folder))
    return found


def _scratch_folder(prefix):
    """A temporary folder for an unpacked .zip, removed when this command ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def find_sources(source):
    """(student id, folder or .zip) for each submission under source: a folder of submissions (one
    folder or .zip per student, as `batch` takes), or a Gradescope export (folder or .zip)."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".zip":
        unpacked = _scratch_folder("kit-export-")
        from ..engine.batch import unzip_safely
        unzip_safely(source, unpacked)
        source = unpacked
    if not source.is_dir():
        raise ManualError(f"{source} is not a folder of submissions nor a Gradescope export (.zip).")
    exports = [p.parent for p in source.glob("*submission_metadata.yml")] + \
              [p.parent for p in source.glob("*/submission_metadata.yml")]
    if exports:
        return _gradescope_submissions(exports[0])
    from ..engine.batch import find_submissions
    return [(student_id(name), path) for name, path in find_submissions(source)]


def _notebook_of(path, notebook):
    """Path of the notebook in a submission folder (or .zip, unpacked), searched one level deep too."""
    if path.suffix.lower() == ".zip":
        from ..engine.batch import unzip_safely
        unpacked = _scratch_folder("kit-zip-")
        unzip_safely(path, unpacked)
        path = unpacked
    candidates = [path / notebook, *sorted(path.glob(f"*/{notebook}"))]
    return next((p for p in candidates if p.is_file()), None)


def align_manual_cells(notebook, reference):
    """Give the submitted notebook's hand-graded cells the gradebook's nbgrader flags and points (a
    student's copy may come from a release whose flags were set otherwise; nbgrader's checksums cover
    them). Only the flags change: the student's text and outputs stay as they are."""
    flags = {}
    for cell in reference["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if str(meta.get("grade_id", "")).endswith("-manual"):
            flags[meta["grade_id"]] = {k: meta[k] for k in ("grade", "task", "solution", "locked", "points")
                                       if k in meta}
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") in flags:
            meta.update(flags[meta["grade_id"]])
    return notebook


def collect(assignment, source, course=None):
    """Fill the gradebook and copy every submission's notebook to submitted/STUDENT/ASSIGNMENT/.
    Returns (collected student ids, [(student id, why not collected)])."""
    course = setup(assignment, course)
    api = _api(course)
    reference = gradebook_notebook(assignment)
    collected, skipped = [], []
    for student, path in find_sources(source):
        found = _notebook_of(Path(path), assignment.notebook)
        if found is None:
            skipped.append((student, f"no {assignment.notebook} in {path}"))
            continue
        target = course / "submitted" / student / assignment.name
        target.mkdir(parents=True, exist_ok=True)
        try:
            notebook = json.loads(found.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            skipped.append((student, f"{found} is not a readable notebook ({error})"))
            continue
        (target / assignment.notebook).write_text(
            json.dumps(align_manual_cells(notebook, reference), indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8")
        api.gradebook.update_or_create_student(student)
        collected.append(student)
    return collected, skipped


def autograde(assignment, course=None, force=False):
    """nbgrader autograde of every collected submission not autograded yet (force: all of them), outputs
    kept. Returns {student: error or ''}. Autograding again keeps the hand scores, but nbgrader then flags
    them as to grade again (the submission may have changed), hence not by default."""
    course = course_dir(assignment, course)
    submitted = course / "submitted"
    if not submitted.is_dir():
        raise ManualError(f"nothing collected in {course}: run `python -m autograder manual collect "
                          f"{assignment.name} SUBMISSIONS` first.")
    api = _api(course)
    outcome = {}
    for student in sorted(p.name for p in submitted.iterdir() if (p / assignment.name).is_dir()):
        if not force and (course / "autograded" / student / assignment.name / assignment.notebook).is_file():
            continue
        result = api.autograde(assignment.name, student, force=True, create=True)
        outcome[student] = "" if result["success"] else (result.get("error") or result.get("log", ""))[-2000:]
    return outcome


# --- Formgrader --------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_formgrader(assignment, course=None, port=None, token=None, **popen):
    """Start a Jupyter server on 127.0.0.1 with nbgrader's formgrader for the course.
    Returns (process, base url with token)."""
    course = course_dir(assignment, course)
    if not (course / "nbgrader_config.py").is_file():
        raise ManualError(f"{course} is no manual-grading course yet: run `python -m autograder manual collect "
                          f"{assignment.name} SUBMISSIONS` first.")
    port = port or free_port()
    token = token or secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={course}",
               f"--IdentityProvider.token={token}",
               "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")      # containers and CI run as root
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    process = subprocess.Popen(command, cwd=course, env=env, **popen)
    return process, f"http://127.0.0.1:{port}", token


# --- Reading the gradebook and merging ----------------------------------------------------------

def manual_scores(assignment, course=None):
    """{student: {task id: {"manual", "max", "needs_grading", "comment"}}} from the gradebook.

    A required task's score is nbgrader's score plus extra credit, capped at its manual points; the
    bonus cell is worth 0 in nbgrader, so its points are its extra credit, capped at course_config's."""
    from nbgrader.api import Gradebook, MissingEntry
    course = course_dir(assignment, course)
    tasks = manual_tasks(assignment)
    scores = {}
    with Gradebook(_config(course).CourseDirectory.db_url) as gb:
        try:
            submissions = gb.assignment_submissions(assignment.name)
        except MissingEntry:
            raise ManualError(f"the gradebook of {course} holds no {assignment.name}: run "
                              f"`python -m autograder manual collect {assignment.name} SUBMISSIONS`.") from None
        for submission in submissions:
            per_task = {}
            for notebook in submission.notebooks:
                comments = {c.name: (c.comment or "").strip() for c in notebook.comments}
                for grade in notebook.grades:
                    task = tasks.get(grade.name)
                    if task is None:
                        continue
                    # nbgrader's grade.score drops the extra credit when no score was entered: add up here
                    entered = grade.manual_score if grade.manual_score is not None else grade.auto_score
                    earned = (entered or 0) + (grade.extra_credit or 0)
                    per_task[task.id] = {"manual": min(max(earned, 0), task.manual_points),
                                         "max": task.manual_points,
                                         # the bonus cell is graded once its extra credit is entered
                                         "needs_grading": bool(grade.needs_manual_grade) and not (
                                             task.bonus and grade.extra_credit is not None),
                                         "comment": comments.get(grade.name, "")}
            scores[submission.student.id] = per_task
    return scores


def gradebook_maximum(assignment, course=None):
    """(required, bonus) manual points nbgrader counts for the assignment's notebook."""
    from nbgrader.api import Gradebook
    course = course_dir(assignment, course)
    tasks = manual_tasks(assignment)
    required = bonus = 0
    with Gradebook(_config(course).CourseDirectory.db_url) as gb:
        for notebook in gb.find_assignment(assignment.name).notebooks:
            for cell in [*notebook.grade_cells, *notebook.task_cells]:
                if tasks.get(cell.name) is not None and tasks[cell.name].bonus:
                    bonus += cell.max_score
                else:
                    required += cell.max_score
    return required, bonus


def read_batch(grades_csv):
    """{student id: {"tasks": {task id: points}, "status", "name"}} of a batch's grades.csv."""
    grades_csv = Path(grades_csv)
    if not grades_csv.is_file():
        raise ManualError(f"{grades_csv} is missing: run `python -m autograder batch ASSIGNMENT SUBMISSIONS "
                          "--out OUT` and pass OUT/grades.csv.")
    rows = {}
    with open(grades_csv, newline="") as f:
        for row in csv.DictReader(f):
            name = row["submission"]
            tasks = {k: float(v or 0) for k, v in row.items()
                     if k not in ("submission", "total", "status", "seconds")}
            rows[student_id(name)] = {"tasks": tasks, "status": row.get("status", ""), "name": name}
    return rows


def _number(x):
    return int(x) if float(x).is_integer() else round(float(x), 2)


def merge(assignment, grades_csv, out, course=None, results_json=False):
    """Write OUT/grades.csv (one row per student and task), OUT/totals.csv (one row per student),
    OUT/feedback/STUDENT.md and, with results_json, OUT/results/STUDENT/results.json. Returns the rows."""
    batch = read_batch(grades_csv)
    batch_dir = Path(grades_csv).parent
    manual = manual_scores(assignment, course)
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    rows, totals = [], []
    for student in sorted(set(batch) | set(manual)):
        auto_row = batch.get(student, {"tasks": {}, "status": "not autograded", "name": student})
        hand = manual.get(student, {})
        student_rows = []
        for task in assignment.tasks:
            auto = auto_row["tasks"].get(task.id, 0.0)
            part = hand.get(task.id, {})
            score = part.get("manual", 0.0)
            student_rows.append({
                "student": student, "task": task.id, "bonus": int(task.bonus),
                "auto": _number(auto), "auto_max": task.auto_points,
                "manual": _number(score), "manual_max": task.manual_points,
                "total": _number(auto + score), "max": task.points,
                "manual_status": ("" if not task.manual_points else "not collected" if not part
                                  else "to grade" if part["needs_grading"] else "graded")})
        rows.extend(student_rows)
        required = [r for r in student_rows if not r["bonus"]]
        totals.append({"student": student,
                       "auto": _number(sum(r["auto"] for r in required)),
                       "manual": _number(sum(r["manual"] for r in required)),
                       "total": _number(sum(r["total"] for r in required)),
                       "bonus": _number(sum(r["total"] for r in student_rows if r["bonus"])),
                       "max": assignment.max_score,
                       "autograder": auto_row["status"],
                       "to_grade": ",".join(r["task"] for r in student_rows if r["manual_status"] == "to grade")})
        auto_feedback = batch_dir / student / "feedback.md"
        (out / "feedback" / f"{student}.md").write_text(
            feedback_text(assignment, student, student_rows, totals[-1], hand,
                          auto_feedback.read_text() if auto_feedback.is_file() else ""))
        if results_json:
            write_results_json(assignment, batch_dir / student / "results.json", student_rows, hand,
                               out / "results" / student / "results.json")
    for name, table in (("grades.csv", rows), ("totals.csv", totals)):
        with open(out / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["student"])
            writer.writeheader()
            writer.writerows(table)
    return rows


def feedback_text(assignment, student, rows, total, hand, auto_feedback):
    lines = [f"# {assignment.title}: your grade", "",
             f"Student: {student}. Required tasks: {total['total']} / {total['max']} points "
             f"({total['auto']} autograded, {total['manual']} graded by hand); bonus: {total['bonus']} points.", "",
             "| Task | Autograded | By hand | Total |", "|---|---|---|---|"]
    for r in rows:
        label = f"{r['task']} (bonus)" if r["bonus"] and "bonus" not in r["task"].lower() else r["task"]
        auto = f"{r['auto']} / {r['auto_max']}" if r["auto_max"] else "–"
        by_hand = f"{r['manual']} / {r['manual_max']}" if r["manual_max"] else "–"
        lines.append(f"| {label} | {auto} | {by_hand} | {r['total']} / {r['max']} |")
    lines += ["", "## Graded by hand", ""]
    for task in assignment.tasks:
        if not task.manual_points:
            continue
        part = hand.get(task.id)
        state = ("not graded yet" if not part or part["needs_grading"] else f"{_number(part['manual'])} / {task.manual_points}")
        lines.append(f"- **{task.id} {task.title}** ({task.manual}): {state}")
        if part and part["comment"]:
            lines += ["", "  > " + part["comment"].replace("\n", "\n  > "), ""]
    lines += ["", "## Autograded", ""]
    body = auto_feedback.split("\n", 1)[1] if auto_feedback.startswith("# ") else auto_feedback
    lines.append(body.strip() or "No autograder feedback was found for this submission.")
    return "\n".join(lines) + "\n"


def write_results_json(assignment, auto_results, rows, hand, target):
    """Gradescope's results.json with one extra test per hand-graded task."""
    results = json.loads(auto_results.read_text()) if auto_results.is_file() else {"tests": [], "score": 0}
    for r in rows:
        if not r["manual_max"]:
            continue
        part = hand.get(r["task"], {})
        task = assignment.task(r["task"])
        results["tests"].append({"name": f"{task.id} {task.title}: graded by hand", "score": r["manual"],
                                 "max_score": 0 if task.bonus else r["manual_max"],
                                 "output": part.get("comment") or "", "visibility": "visible",
                                 "extra_data": {"task": task.id, "manual": True}})
    results["score"] = _number(sum(t["score"] for t in results["tests"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")


# --- Command line --------------------------------------------------------------------------------

def add_arguments(parser):
    actions = parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("collect", help="fill the gradebook and copy the submissions' notebooks into the course")
    p.add_argument("assignment")
    p.add_argument("submissions", help="a folder of submissions (one folder or .zip each, as `batch` takes) "
                                       "or a Gradescope 'Download Submissions' export (folder or .zip)")
    p = actions.add_parser("autograde", help="nbgrader autograde, keeping the students' outputs")
    p.add_argument("assignment")
    p.add_argument("--force", action="store_true",
                   help="autograde again those already autograded (their hand scores stay, flagged to review)")
    p = actions.add_parser("formgrader", help="serve nbgrader's formgrader on 127.0.0.1 (Ctrl-C stops it)")
    p.add_argument("assignment")
    p.add_argument("--port", type=int, default=8890)
    p = actions.add_parser("merge", help="one gradebook: the batch's grades.csv plus the manual scores")
    p.add_argument("assignment")
    p.add_argument("grades", help="grades.csv of `python -m autograder batch`")
    p.add_argument("--out", required=True, help="grades.csv, totals.csv and feedback/ go here")
    p.add_argument("--results-json", action="store_true",
                   help="also write results/STUDENT/results.json for Gradescope, the manual part included")
    p = actions.add_parser("status", help="what is collected, autograded and still to grade")
    p.add_argument("assignment")
    for p in actions.choices.values():
        p.add_argument("--course", default=None, help=f"the nbgrader course folder (default: "
                                                       f"{os.path.relpath(DEFAULT_COURSE)}/ASSIGNMENT)")


def main(args):
    import warnings
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)      # nbgrader's own session warnings
    assignment = course_config.get_assignment(args.assignment)
    course = course_dir(assignment, args.course)
    try:
        if args.action == "collect":
            collected, skipped = collect(assignment, args.submissions, course)
            print(f"Collected {len(collected)} notebook(s) into {course}/submitted/"
                  + "".join(f"\n  skipped {s}: {why}" for s, why in skipped))
        elif args.action == "autograde":
            outcome = autograde(assignment, course, force=args.force)
            failed = {s: e for s, e in outcome.items() if e}
            print(f"Autograded {len(outcome) - len(failed)} of {len(outcome)} submission(s), outputs kept, "
                  f"into {course}/autograded/" + "".join(f"\n  {s} failed: {e}" for s, e in failed.items()))
            return 1 if failed else 0
        elif args.action == "formgrader":
            process, url, token = start_formgrader(assignment, course, port=args.port)
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
            print(f"Formgrader: {url}/formgrader?token={token}  (Ctrl-C stops the server)", flush=True)
            try:
                return process.wait()
            except KeyboardInterrupt:
                process.terminate()
                process.wait()
        elif args.action == "merge":
            rows = merge(assignment, args.grades, args.out, course, results_json=args.results_json)
            print(f"Merged {len({r['student'] for r in rows})} student(s) into {args.out}/grades.csv, totals.csv "
                  f"and feedback/" + (", results/" if args.results_json else ""))
        elif args.action == "status":
            required, bonus = gradebook_maximum(assignment, course)
            print(f"{course}: manual points in the gradebook {_number(required)} required "
                  f"(+{_number(bonus)} bonus cells, graded as extra credit)")
            for student, per_task in sorted(manual_scores(assignment, course).items()):
                todo = [t.id for t in assignment.tasks if per_task.get(t.id, {}).get("needs_grading")]
                print(f"  {student}: " + (f"to grade: {', '.join(todo)}" if todo else "graded"))
    except ManualError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
