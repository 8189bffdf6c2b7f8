"""Grade every submission under a folder, in parallel, each in its own grader process.

One submission's crash, hang or hostility costs only its own row: each is graded by a separate
`python -m autograder grade` process with its own deadline, and a grader that dies still gets
a row saying so.
"""

import concurrent.futures
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tqdm import tqdm

from .. import KIT_ROOT
from .grade import all_reference_observations, task_scores
from .sandbox import SECRETS_ENV

MAX_UNZIPPED_BYTES = 500 << 20


def safe_name(name):
    """A folder name for the submission's output: letters, digits, '.', '_' and '-' only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"
    return cleaned[:100]


def output_folders(names):
    """A distinct output folder per submission name, even where names clean up (or fold case) alike:
    'alice', 'alice.zip' and 'alice-2' never share one."""
    names = list(names)
    bases = {name: safe_name(Path(name).stem if name.lower().endswith(".zip") else name) for name in names}
    taken, folders = set(), {}
    for name in sorted(names):               # names that are already clean keep their folder first
        if bases[name] == name and name.lower() not in taken:
            taken.add(name.lower())
            folders[name] = name
    for name in sorted(set(names) - set(folders)):
        folder, n = bases[name], 1
        while folder.lower() in taken:
            n += 1
            folder = f"{bases[name]}-{n}"
        taken.add(folder.lower())
        folders[name] = folder
    return folders


def unzip_safely(archive, target):
    """Unpack a .zip submission, refusing paths that leave target and archives that are too large."""
    with zipfile.ZipFile(archive) as zipped:
        total = 0
        for member in zipped.infolist():
            path = (target / member.filename).resolve()
            if not path.is_relative_to(target.resolve()):
                raise ValueError(f"{archive.name} holds a path outside the archive ({member.filename})")
            total += member.file_size
            if total > MAX_UNZIPPED_BYTES:
                raise ValueError(f"{archive.name} unpacks to more than {MAX_UNZIPPED_BYTES >> 20} MB")
        zipped.extractall(target)


def find_submissions(submissions_dir):
    """(name, path) of every submission: each folder, and each .zip file, directly under the folder."""
    entries = sorted(Path(submissions_dir).iterdir())
    return [(p.name, p) for p in entries if (p.is_dir() and not p.is_symlink()) or p.suffix.lower() == ".zip"]


def grade_one(assignment, name, path, out_dir, use_sandbox, timeout, submissions_dir=None):
    """Grade one submission in a child process; returns its grades.csv row. The worker may read
    neither the batch's other submissions nor its output folders (KIT_SECRET_PATHS)."""
    submissions_dir = submissions_dir or path.parent
    started = time.monotonic()
    row = {"submission": name, "status": "graded"}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").unlink(missing_ok=True)      # never read a stale result
    unpacked = None
    try:
        if path.suffix.lower() == ".zip":
            unpacked = Path(tempfile.mkdtemp(prefix="kit-zip-"))
            unzip_safely(path, unpacked)
            path = unpacked
        command = [sys.executable, "-m", "autograder", "grade", assignment.name, str(path), "--out", str(out_dir)]
        if not use_sandbox:
            command.append("--no-sandbox")
        secrets = os.pathsep.join(filter(None, [os.environ.get(SECRETS_ENV), str(Path(submissions_dir).resolve()),
                                                 str(out_dir.parent.resolve())]))
        completed = subprocess.run(command, cwd=KIT_ROOT, capture_output=True, text=True, timeout=timeout,
                                   start_new_session=True, env={**os.environ, SECRETS_ENV: secrets})
        (out_dir / "grader.log").write_text(completed.stdout[-20000:] + completed.stderr[-20000:])
        results = json.loads((out_dir / "results.json").read_text())
        row["total"] = results["score"]
        row.update(task_scores(results))
        if "autograder failed" in results.get("output", ""):
            row["status"] = "grader error: see grader.log"
    except subprocess.TimeoutExpired:
        row.update(total=0, status=f"grader timed out after {timeout} s")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        row.update(total=0, status=f"not graded: {str(error)[:200]}")
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)
    row["seconds"] = round(time.monotonic() - started, 1)
    return row


def run_batch(assignment, submissions_dir, out_dir, jobs=None, use_sandbox=True):
    """Grade all submissions (each with a probe set drawn at random); writes OUT/<name>/ each and
    OUT/grades.csv. Returns the rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    submissions = find_submissions(submissions_dir)
    all_reference_observations(assignment)      # computed once here, not by every grader at once
    jobs = jobs or os.cpu_count() or 1
    timeout = assignment.sandbox.wall_seconds * 2 + 120
    names = output_folders(name for name, _ in submissions)
    rows = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_one, assignment, name, path, out_dir / names[name], use_sandbox, timeout,
                               submissions_dir)
                   for name, path in submissions]
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures), desc="grading",
                           unit="submission"):
            rows.append(future.result())
    rows.sort(key=lambda r: r["submission"])
    write_grades(assignment, rows, out_dir / "grades.csv")
    return rows


def write_grades(assignment, rows, path):
    task_ids = [t.id for t in assignment.tasks if t.auto_points]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", "total", *task_ids, "status", "seconds"])
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, 0 if key in task_ids else "") for key in writer.fieldnames})
