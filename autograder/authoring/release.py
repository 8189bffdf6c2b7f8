"""Generate the student release of an assignment from its single source.

Notebooks go through nbgrader's generate_assignment (solutions cleared, hidden tests and mark
schemes removed, points taken from course_config). Python files go through the kit's own
stripper: each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes
``raise NotImplementedError(...)`` under the TODO comment that precedes it. Other files are
copied as they are.
"""

import filecmp
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import course_config

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
TODO = re.compile(r"^\s*#\s*TODO\s*\(([^)]+)\)")
# Never released: build leftovers, data, results, and the notes for instructors (decisions and
# rubric background that students must not see).
SKIPPED = {"__pycache__", ".ipynb_checkpoints", "results", "data", ".pytest_cache", "INSTRUCTORS.md"}


class ReleaseError(Exception):
    """The source cannot be released as it is; the message says where and why."""


def stub_line(indent, task, filename):
    return f'{indent}raise NotImplementedError("TODO ({task}) in {filename} is not done yet")\n'


def strip_solutions(text, filename="vae.py"):
    """Return (released text, list of (task, solution lines)) for a Python source.

    Every solution region must sit right under a comment block holding ``# TODO (task): ...``.
    """
    released, regions = [], []
    todo_task, region = None, None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if region is not None:
                raise ReleaseError(f"{filename}:{number}: a solution region starts inside another one")
            if todo_task is None:
                raise ReleaseError(f"{filename}:{number}: a solution region needs a '# TODO (task): ...' "
                                   "comment right above it")
            indent = line[:len(line) - len(line.lstrip())]
            released.append(stub_line(indent, todo_task, filename))
            region = (todo_task, [])
        elif stripped.startswith(END):
            if region is None:
                raise ReleaseError(f"{filename}:{number}: '{END}' without a '{BEGIN}' before it")
            regions.append(region)
            region, todo_task = None, None
        elif region is not None:
            region[1].append(line)
        else:
            released.append(line)
            match = TODO.match(line)
            if match:
                todo_task = match.group(1)
            elif stripped and not stripped.startswith("#"):
                todo_task = None
    if region is not None:
        raise ReleaseError(f"{filename}: the solution region for TODO ({region[0]}) is never closed")
    return "".join(released), regions


def _grade_id(task_id):
    return task_id.replace(".", "") + "-manual"


def inject_points(notebook, assignment):
    """Set each manually graded cell's points from course_config; a cell's grade_id names its task
    (e.g. "B1-manual"). A required task's cell gets its manual points; a bonus task's cell gets 0
    in nbgrader (extra credit: nbgrader's maximum stays the required points) and must name its
    points in its text. Raises ReleaseError when a task's cell is missing, a cell's task is unknown,
    or a cell is both a grade and a task cell (nbgrader would count its points twice)."""
    tasks = {_grade_id(t.id): t for t in assignment.tasks if t.manual_points}
    seen = set()
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not (meta.get("grade") or meta.get("task")):
            continue
        grade_id = meta.get("grade_id")
        if meta.get("grade") and meta.get("task"):
            raise ReleaseError(f"{assignment.notebook}: cell {grade_id!r} is marked both 'grade' and 'task': "
                               "nbgrader counts its points twice; keep one of the two")
        if grade_id not in tasks:
            raise ReleaseError(f"{assignment.notebook}: graded cell {grade_id!r} belongs to no task with "
                               f"manual points in course_config (expected one of {sorted(tasks)})")
        if grade_id in seen:
            raise ReleaseError(f"{assignment.notebook}: two graded cells for {grade_id!r}; give each task one")
        task = tasks[grade_id]
        if task.bonus:
            source = "".join(cell.get("source", ""))
            if f"{task.manual_points} points" not in source:
                raise ReleaseError(f"{assignment.notebook}: the bonus cell {grade_id!r} must say in its text that "
                                   f"it is worth {task.manual_points} points (nbgrader records 0: extra credit)")
            meta["points"] = 0
        else:
            meta["points"] = task.manual_points
        seen.add(grade_id)
    missing = sorted(set(tasks) - seen)
    if missing:
        raise ReleaseError(f"{assignment.notebook}: no graded cell for {', '.join(missing)}")
    return notebook


def required_manual_points(assignment):
    """What nbgrader's maximum score of the assignment must be: the required tasks' manual points."""
    return sum(t.manual_points for t in assignment.tasks if not t.bonus)


def check_nbgrader_points(db_url, assignment):
    """nbgrader's own count of the released assignment's maximum score (its gradebook, filled by
    generate_assignment) must be the required manual points of course_config."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gradebook:
        counted = gradebook.find_assignment(assignment.name).max_score
    if counted != required_manual_points(assignment):
        raise ReleaseError(f"nbgrader counts {counted:g} points in {assignment.notebook}; course_config's required "
                           f"manual points are {required_manual_points(assignment)}")


def _release_notebooks(assignment, notebooks, out_dir):
    """Run nbgrader's generate_assignment in a scratch course directory."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        source = scratch / course_config.SOURCE_DIR / assignment.name
        source.mkdir(parents=True)
        for path in notebooks:
            notebook = inject_points(json.loads(path.read_text(encoding="utf-8")), assignment)
            (source / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
        config = course_config.configure_nbgrader(Config(), root=scratch, db_dir=scratch)
        # nbgrader's gradebook runs the `alembic` command, which sits beside this Python.
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        result = NbGraderAPI(config=config).generate_assignment(assignment.name, force=True, create=True)
        if not result["success"]:
            raise ReleaseError(f"nbgrader generate_assignment failed:\n{result['error']}\n{result['log']}")
        check_nbgrader_points(config.CourseDirectory.db_url, assignment)
        for path in notebooks:
            released = scratch / course_config.RELEASE_DIR / assignment.name / path.name
            shutil.copyfile(released, out_dir / path.relative_to(assignment.source_dir))


def source_files(assignment):
    """The files of the assignment's source folder that make up the release, sorted."""
    files = []
    for path in sorted(assignment.source_dir.rglob("*")):
        parts = path.relative_to(assignment.source_dir).parts
        if path.is_file() and not SKIPPED.intersection(parts) and path.suffix != ".pyc":
            files.append(path)
    return files


def build_release(assignment, out_dir):
    """Write the release of assignment into out_dir (emptied first). Returns the released paths."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    files = source_files(assignment)
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    for path in files:
        target = out_dir / path.relative_to(assignment.source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            text, _ = strip_solutions(path.read_text(encoding="utf-8"), path.name)
            target.write_text(text, encoding="utf-8")
        elif path.suffix != ".ipynb":
            shutil.copyfile(path, target)
    _release_notebooks(assignment, notebooks, out_dir)
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


def differences(expected_dir, actual_dir):
    """Relative paths that differ between two release folders (missing, extra or changed)."""
    expected_dir, actual_dir = Path(expected_dir), Path(actual_dir)

    def listing(root):
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file()} if root.exists() else set()

    expected, actual = listing(expected_dir), listing(actual_dir)
    changed = [p for p in expected & actual if not filecmp.cmp(expected_dir / p, actual_dir / p, shallow=False)]
    return sorted(str(p) for p in (expected ^ actual) | set(changed))


def release(assignment, check=False, release_dir=None):
    """Regenerate release/<name>/ (or release_dir), or with check=True only compare it with what
    the source generates. Returns the list of differing paths (empty when in sync)."""
    release_dir = Path(release_dir or assignment.release_dir)
    if not check:
        build_release(assignment, release_dir)
        return []
    with tempfile.TemporaryDirectory() as scratch:
        build_release(assignment, scratch)
        return differences(scratch, release_dir)
