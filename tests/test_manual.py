"""Manual grading end to end on a small course of three generated submissions.

- reference: the reference vae.py and results, and the executed solution notebook (figures in it);
- blank: the untouched release (stubs, the release notebook);
- mutant: a catalog mutant's vae.py with the solution notebook's outputs.

collect -> autograde (outputs kept) -> scores entered in the gradebook -> merge with a real batch.
release/ must be untouched; the gradebook's manual maximum must be course_config's; merged totals
must be auto + manual, with the bonus's extra credit capped at its points.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course_config  # noqa: E402

from autograder.authoring import manual  # noqa: E402

ASSIGNMENT = course_config.VAE
SOLUTION_NOTEBOOK = ASSIGNMENT.solutions_dir / ASSIGNMENT.notebook
MUTANT = "m_decoder_no_sigmoid"


def images_in(notebook_path):
    notebook = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    return sum("image/png" in output.get("data", {})
               for cell in notebook["cells"] for output in cell.get("outputs", []))


def build_submissions(target, names=("blank", "mutant", "reference")):
    """Three submission folders as students hand them in (one folder per student)."""
    from autograder.qa import catalog
    if not SOLUTION_NOTEBOOK.is_file() or not images_in(SOLUTION_NOTEBOOK):
        pytest.skip(f"{SOLUTION_NOTEBOOK} (the executed solution notebook) is missing: "
                    "run `python -m autograder reference vae`")
    entries = {e.name: e for e in catalog.entries_for(ASSIGNMENT)}
    by_kind = {"reference": next(e for e in entries.values() if e.kind == "reference"),
               "blank": next(e for e in entries.values() if e.kind == "blank"),
               "mutant": entries[MUTANT]}
    context = catalog.Context(kit_root=str(ROOT))
    for name in names:
        folder = catalog.build(by_kind[name], ASSIGNMENT, context, ASSIGNMENT.solutions_dir / "results",
                               Path(target) / name)
        if name != "blank":     # the students ran their notebook: its figures are in it
            (folder / ASSIGNMENT.notebook).write_bytes(SOLUTION_NOTEBOOK.read_bytes())
    return Path(target)


def release_status():
    return subprocess.run(["git", "status", "--porcelain", "--", "release/"], cwd=ROOT,
                          capture_output=True, text=True).stdout


def set_score(course, student, grade_id, manual_score=None, extra_credit=None):
    """What a grader does in formgrader (its grade API's rules), done through nbgrader's gradebook."""
    from nbgrader.api import Gradebook
    with Gradebook(manual._config(course).CourseDirectory.db_url) as gb:
        grade = gb.find_grade(grade_id, ASSIGNMENT.notebook.removesuffix(".ipynb"), ASSIGNMENT.name, student)
        if manual_score is not None:
            grade.manual_score = manual_score
        if extra_credit is not None:
            grade.extra_credit = extra_credit
        # as formgrader's grade API does: graded once a score is in
        grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
        gb.db.commit()


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("manual")
    before = release_status()
    submissions = build_submissions(tmp / "submissions")
    course = tmp / "course"
    collected, skipped = manual.collect(ASSIGNMENT, submissions, course)
    assert sorted(collected) == ["blank", "mutant", "reference"] and not skipped
    outcome = manual.autograde(ASSIGNMENT, course)
    assert outcome == {"blank": "", "mutant": "", "reference": ""}, outcome
    assert release_status() == before, "manual grading changed release/"
    return {"course": course, "submissions": submissions, "tmp": tmp, "release_status": before}


def test_gradebook_counts_the_manual_points_of_course_config(course):
    from nbgrader.api import Gradebook
    required = sum(t.manual_points for t in ASSIGNMENT.tasks if not t.bonus)
    assert manual.gradebook_maximum(ASSIGNMENT, course["course"]) == (required, 0)
    with Gradebook(manual._config(course["course"]).CourseDirectory.db_url) as gb:
        assert gb.find_assignment(ASSIGNMENT.name).max_score == required
        cells = {c.name for nb in gb.find_assignment(ASSIGNMENT.name).notebooks
                 for c in [*nb.grade_cells, *nb.task_cells]}
    assert cells == set(manual.manual_tasks(ASSIGNMENT))


def test_autograde_keeps_the_students_outputs(course):
    autograded = course["course"] / "autograded"
    for student in ("reference", "mutant"):
        kept = images_in(autograded / student / ASSIGNMENT.name / ASSIGNMENT.notebook)
        assert kept == images_in(course["submissions"] / student / ASSIGNMENT.notebook) > 0
    assert not (autograded / "reference" / ASSIGNMENT.name / ASSIGNMENT.student_file).exists()


def test_merge_adds_auto_and_manual(course):
    course_dir, tmp = course["course"], course["tmp"]
    batch = tmp / "batch"
    subprocess.run([sys.executable, "-m", "autograder", "batch", ASSIGNMENT.name, str(course["submissions"]),
                    "--out", str(batch), "--jobs", "3"], cwd=ROOT, check=True, capture_output=True)
    bonus = ASSIGNMENT.task("bonus")
    entered = {("reference", "B1-manual"): {"manual_score": ASSIGNMENT.task("B.1").manual_points - 3},
               ("reference", "A2-manual"): {"manual_score": ASSIGNMENT.task("A.2").manual_points},
               ("reference", "bonus-manual"): {"extra_credit": bonus.manual_points + 5},   # capped
               ("mutant", "C-manual"): {"manual_score": 4, "extra_credit": 1},
               ("blank", "B1-manual"): {"manual_score": 0}}
    for (student, grade_id), values in entered.items():
        set_score(course_dir, student, grade_id, **values)

    out = tmp / "merged"
    result = subprocess.run([sys.executable, "-m", "autograder", "manual", "merge", ASSIGNMENT.name,
                             str(batch / "grades.csv"), "--out", str(out), "--course", str(course_dir),
                             "--results-json"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(batch / "grades.csv", newline="") as f:
        auto = {row["submission"]: row for row in csv.DictReader(f)}
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["student"] for r in rows} == {"blank", "mutant", "reference"}
    assert len(rows) == 3 * len(ASSIGNMENT.tasks)
    for row in rows:
        task = ASSIGNMENT.task(row["task"])
        expected_auto = float(auto[row["student"]].get(task.id) or 0)
        assert float(row["auto"]) == expected_auto
        assert float(row["total"]) == float(row["auto"]) + float(row["manual"])
        assert float(row["manual"]) <= task.manual_points
    manual_of = {(r["student"], r["task"]): float(r["manual"]) for r in rows}
    assert manual_of[("reference", "B.1")] == ASSIGNMENT.task("B.1").manual_points - 3
    assert manual_of[("reference", "bonus")] == bonus.manual_points
    assert manual_of[("mutant", "C")] == 5
    assert manual_of[("blank", "B.1")] == 0
    # The mutant loses autograded points that the reference keeps.
    assert float(auto["mutant"]["total"]) < float(auto["reference"]["total"])

    with open(out / "totals.csv", newline="") as f:
        totals = {r["student"]: r for r in csv.DictReader(f)}
    for student, total in totals.items():
        required = [r for r in rows if r["student"] == student and r["bonus"] == "0"]
        assert float(total["total"]) == sum(float(r["total"]) for r in required)
        assert float(total["auto"]) == float(auto[student]["total"]) - float(auto[student]["bonus"])
    graded = {gid for (student, gid) in entered if student == "reference"}
    not_graded = [t.id for t in ASSIGNMENT.tasks if t.manual_points and manual.grade_id(t.id) not in graded]
    assert totals["reference"]["to_grade"].split(",") == not_graded     # the bonus counts once its extra credit is in

    feedback = (out / "feedback" / "reference.md").read_text()
    assert "Graded by hand" in feedback and "Autograded" in feedback
    assert (batch / "reference" / "feedback.md").read_text().splitlines()[2] in feedback
    results = json.loads((out / "results" / "reference" / "results.json").read_text())
    assert results["score"] == float(auto["reference"]["total"]) + sum(
        v for (s, _), v in manual_of.items() if s == "reference")
    assert manual.autograde(ASSIGNMENT, course_dir) == {}, "autograde again: only new submissions"
    assert manual.manual_scores(ASSIGNMENT, course_dir)["reference"]["A.2"]["needs_grading"] is False
    assert release_status() == course["release_status"], "manual grading changed release/"


def test_gradescope_export_layout(tmp_path):
    """Gradescope's 'Download Submissions': submission_metadata.yml names each submission_<id>/ folder's
    submitters; the student id is the first submitter's sid."""
    export = tmp_path / "assignment_123_export"
    for folder in ("submission_1", "submission_2"):
        (export / folder).mkdir(parents=True)
        (export / folder / ASSIGNMENT.notebook).write_text("{}")
    (export / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1815'\n    :email: ada@example.org\n"
        "submission_2:\n  :submitters:\n  - :name: Alan Turing\n    :email: alan@example.org\n")
    found = manual.find_sources(tmp_path)
    assert found == [("1815", export / "submission_1"), ("alan_example.org", export / "submission_2")]


def test_bad_input_says_what_to_do(tmp_path):
    with pytest.raises(manual.ManualError, match="not a folder"):
        manual.find_sources(tmp_path / "nowhere")
    with pytest.raises(manual.ManualError, match="autograder batch"):
        manual.read_batch(tmp_path / "grades.csv")
