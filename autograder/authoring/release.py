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
SKIPPED = {"__pycache__", ".ipynb_checkpoints", "results", "data", ".pytest_cache"}


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
    (e.g. "B1-manual"). Raises ReleaseError when a task's cell is missing or a cell's task is unknown."""
    expected = {_grade_id(t.id): t.manual_points for t in assignment.tasks if t.manual_points}
    seen = set()
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        grade_id = meta.get("grade_id")
        if grade_id not in expected:
            raise ReleaseError(f"{assignment.notebook}: graded cell {grade_id!r} belongs to no task with "
                               f"manual points in course_config (expected one of {sorted(expected)})")
        meta["points"] = expected[grade_id]
        seen.add(grade_id)
    missing = sorted(set(expected) - seen)
    if missing:
        raise ReleaseError(f"{assignment.notebook}: no graded cell for {', '.join(missing)}")
    return notebook


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
