"""The grader's outputs: Gradescope schema, feedback, determinism, batch, package, sandbox."""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile

import pytest

from autograder import KIT_ROOT
from autograder.engine import sandbox
from autograder.engine.batch import run_batch
from autograder.engine.grade import grade_submission, hidden_tests, make_reference_submission, task_scores, worker_job
from autograder.authoring.package import build_gradescope_zip

TASK_IDS = {"A.1", "A.2", "B.1", "B.2", "C", "bonus"}


def bwrap_usable():
    path = sandbox.bwrap_path()
    return path is not None and sandbox.bwrap_works(path)


def test_hidden_test_points_add_up_to_the_course_config(assignment):
    totals = {}
    for _, test in hidden_tests(assignment):
        totals[test.grading["task"]] = totals.get(test.grading["task"], 0) + test.grading["points"]
    assert totals == {t.id: t.auto_points for t in assignment.tasks if t.auto_points}


@pytest.fixture(scope="module")
def graded_reference(tmp_path_factory, assignment):
    folder = make_reference_submission(assignment, tmp_path_factory.mktemp("graded") / "reference")
    return folder, grade_submission(assignment, folder)


def test_results_follow_the_gradescope_schema(graded_reference, assignment):
    _, (results, feedback, instructor) = graded_reference
    assert set(results) >= {"score", "execution_time", "output", "tests"}
    assert results["score"] == sum(t["score"] for t in results["tests"])
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility", "extra_data"}
        assert test["status"] in ("passed", "failed") and test["extra_data"]["task"] in TASK_IDS
        assert test["score"] in (0, test["max_score"])
        assert (test["status"] == "passed") == (test["score"] == test["max_score"])
    failed = [t["name"] for t in results["tests"] if t["status"] == "failed"]
    assert failed == ["bonus Face VAE result files: every epoch's losses, the last epoch's reconstructions and "
                      "samples"], "the reference must pass every test but the one that needs a real CelebA run"
    total = results["output"].splitlines()[0].split(" What is graded by hand")[0]
    required = sum(t["score"] for t in results["tests"] if t["extra_data"]["task"] != "bonus")
    required_max = sum(t.auto_points for t in assignment.tasks if not t.bonus)
    assert total.startswith(f"Autograded: {required} of {required_max} points, plus ")
    assert total in feedback, "one total everywhere: results.json and feedback.md say the same"
    for task in assignment.tasks:
        if task.manual_points:
            assert f"{task.id} ({task.manual_points} points, graded by hand)" in results["output"]
    assert "bubblewrap" in results["output"]
    if not json.loads((assignment.solutions_dir / "metrics.json").read_text())["standard_split"]:
        assert any("not on the standard train/test split" in line for line in instructor)
        assert "standard" not in feedback                     # the warning is the instructor's, not the student's


def test_grading_twice_gives_identical_results(graded_reference, assignment):
    """A regrade with the probe set results.json names is identical; another set, the same scores."""
    folder, (first, first_feedback, _) = graded_reference
    used = first["extra_data"]["probe_set"]
    second, second_feedback, _ = grade_submission(assignment, folder, probe_set=used)
    other, other_feedback, _ = grade_submission(assignment, folder, probe_set=(used + 1) % assignment.seeds.probe_sets)
    first, second, other = ({k: v for k, v in r.items() if k != "execution_time"} for r in (first, second, other))
    assert first == second and first_feedback == second_feedback
    assert other["extra_data"]["probe_set"] != used
    assert other["tests"] == first["tests"] and other_feedback == first_feedback


def test_the_blank_release_earns_nothing_and_is_told_why(assignment, tmp_path):
    folder = tmp_path / "blank"
    shutil.copytree(assignment.release_dir, folder)
    results, feedback, _ = grade_submission(assignment, folder)
    assert results["score"] == 0
    assert all(t["output"] for t in results["tests"])
    for task in ("A.1", "B.2", "C", "bonus"):
        assert f"TODO ({task}) is not written yet" in feedback
    assert "No `results/` folder" in feedback


def test_batch_survives_broken_submissions(assignment, tmp_path):
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    shutil.copyfile(assignment.reference_file, submissions / "alice" / assignment.student_file)
    (submissions / "bob").mkdir()
    (submissions / "bob" / assignment.student_file).write_bytes(os.urandom(3000))
    (submissions / "carol").mkdir()
    with zipfile.ZipFile(submissions / "dave.zip", "w") as zipped:
        zipped.write(assignment.reference_file, f"dave/{assignment.student_file}")
    (submissions / "eve.zip").write_bytes(b"not a zip at all")
    rows = run_batch(assignment, submissions, tmp_path / "out", jobs=2)
    by_name = {row["submission"]: row for row in rows}
    assert set(by_name) == {"alice", "bob", "carol", "dave.zip", "eve.zip"}
    assert by_name["alice"]["A.1"] == by_name["dave.zip"]["A.1"] == assignment.task("A.1").auto_points
    assert by_name["bob"]["total"] == by_name["carol"]["total"] == 0
    assert by_name["eve.zip"]["status"].startswith("not graded")
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["submission"] for r in table] == sorted(by_name)
    assert set(table[0]) == {"submission", "total", "A.1", "A.2", "B.2", "C", "bonus", "status", "seconds"}
    assert "could not be imported" in (tmp_path / "out" / "bob" / "feedback.md").read_text()
    assert "No `vae.py` was found" in (tmp_path / "out" / "carol" / "feedback.md").read_text()


def test_gradescope_package(assignment, tmp_path):
    path = build_gradescope_zip(assignment, tmp_path / "autograder.zip")
    with zipfile.ZipFile(path) as zipped:
        names = set(zipped.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in zipped.infolist()}
        setup = zipped.read("setup.sh").decode()
        run = zipped.read("run_autograder").decode()
    assert {"setup.sh", "run_autograder", "course_config.py", "requirements.txt", "reference_data/vae.json",
            "autograder/engine/grade.py", "autograder/engine/worker/worker.py"} <= names
    assert "assignments/vae/vae.py" not in names          # the reference's observations, never its source
    assert any(n.startswith("autograder/graders/vae/hidden_tests/test_") for n in names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert not any(n.startswith(("release/", "tests/", "autograder/graders/vae/catalog/")) or n.endswith(".png")
                   for n in names)
    assert "bubblewrap" in setup and "/autograder/submission --out /autograder/results" in run


def test_without_bwrap_the_results_say_so(assignment, tmp_path, monkeypatch):
    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copyfile(assignment.reference_file, folder / assignment.student_file)
    env = dict(os.environ, KIT_NO_BWRAP="1")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "vae", str(folder), "--out",
                           str(tmp_path / "out")], cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    monkeypatch.setenv("KIT_NO_BWRAP", "1")
    if sandbox.refusal() is not None:       # neither bwrap nor a uid the worker may run as: refused, saying why
        assert done.returncode == 2 and "bubblewrap" in done.stderr, done.stderr[-2000:]
        return
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "bubblewrap cannot run here" in results["output"] or "unsafe local run" in results["output"]
    assert task_scores(results)["A.1"] == assignment.task("A.1").auto_points


@pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is not installed or cannot create namespaces here")
def test_the_sandbox_hides_the_kit_and_the_network(assignment, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    marker = tempfile.NamedTemporaryFile(dir="/tmp", prefix="vaekit-host-marker-")
    module = tmp_path / "vae.py"
    module.write_text(f"""
import os, socket
print("KIT", os.path.exists({str(KIT_ROOT / 'autograder' / 'hidden_tests')!r}), os.path.exists({str(KIT_ROOT)!r} + "/solutions"))
print("UID", os.getuid())
print("TMP", os.path.exists({marker.name!r}), os.path.exists({str(tmp_path)!r}))
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    print("NET connected")
except OSError:
    print("NET refused")
try:
    open({str(KIT_ROOT / 'course_config.py')!r}, "a")
    print("WRITE kit")
except OSError:
    print("WRITE refused")
""")
    result = sandbox.run_worker(module, [], 0, assignment.sandbox, worker_job(assignment))
    printed = result.printed_head
    assert result.sandboxed and result.import_error is None, printed
    assert "KIT False False" in printed and "UID 0" not in printed
    assert "NET refused" in printed and "WRITE refused" in printed and "TMP False False" in printed
    with pytest.raises(OSError):
        listener.accept()


def test_suspicious_code_is_flagged_for_the_instructor_only(assignment, tmp_path):
    from autograder.engine.grade import suspicious_code
    assert suspicious_code(assignment.reference_file) == []
    assert suspicious_code(assignment.release_dir / assignment.student_file) == []
    forger = tmp_path / "vae.py"
    forger.write_text("import sys\nsys.modules['probes'].PROBES.clear()\nframe = sys._getframe(2).f_locals\n")
    assert suspicious_code(forger) == ["the grader's probes", "the calling frames"]
    results, feedback, instructor = grade_submission(assignment, tmp_path)
    assert any("refers to the grader's probes, the calling frames" in line for line in instructor)
    assert "calling frames" not in feedback and "calling frames" not in results["output"]
