"""A second assignment grades end to end without touching the engine: a toy course made here.

The toy contract has two functions, `add(a, b)` and `scale(xs, k)`; its grader folder has one
probe module and one hidden test file, and its course entry is an ordinary course_config
Assignment that points at them. Nothing under autograder/engine/ is edited or special-cased.
"""

import textwrap

import pytest

import course_config
from autograder.engine.grade import grade_submission, hidden_tests

PROBES = '''
"""Probes of the toy assignment: call the student's functions on seeded inputs."""
import random


def error_text(error):
    return f"{type(error).__name__}: {error}"


def toy_inputs(seed):
    rng = random.Random(seed)
    pairs = [(rng.randint(-99, 99), rng.randint(-99, 99)) for _ in range(6)]
    xs, k = [rng.uniform(-5, 5) for _ in range(7)], rng.uniform(-3, 3)
    return pairs, xs, k


def probe_add(module, seed):
    pairs, _, _ = toy_inputs(seed)
    return [module.add(a, b) for a, b in pairs]


def probe_scale(module, seed):
    _, xs, k = toy_inputs(seed)
    return [float(v) for v in module.scale(xs, k)]


PROBES = {"add": probe_add, "scale": probe_scale}
'''

HIDDEN_TESTS = '''
"""The toy's hidden tests: the grader computes the expected values itself."""
import importlib.util
import math
from pathlib import Path

from autograder.engine.judge import fail, graded

_spec = importlib.util.spec_from_file_location("toy_inputs", Path(__file__).parents[1] / "probes" / "probes.py")
_inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_inputs)


@graded("T", 2, "add(a, b) returns the sum")
def test_add(student, seed):
    pairs, _, _ = _inputs.toy_inputs(seed)
    if student.get("add") != [a + b for a, b in pairs]:
        fail("add(a, b) should return a + b")


@graded("T", 1, "scale(xs, k) multiplies every element by k")
def test_scale(student, seed):
    _, xs, k = _inputs.toy_inputs(seed)
    got = student.get("scale")
    if len(got) != len(xs) or not all(math.isclose(g, x * k, rel_tol=1e-9) for g, x in zip(got, xs)):
        fail("scale(xs, k) should return [x * k for x in xs]")
'''

REFERENCE = "def add(a, b):\n    return a + b\n\n\ndef scale(xs, k):\n    return [x * k for x in xs]\n"


@pytest.fixture
def toy(tmp_path):
    grader = tmp_path / "graders" / "toy"
    (grader / "probes").mkdir(parents=True)
    (grader / "hidden_tests").mkdir()
    (grader / "probes" / "probes.py").write_text(textwrap.dedent(PROBES))
    (grader / "hidden_tests" / "test_toy.py").write_text(textwrap.dedent(HIDDEN_TESTS))
    (grader / "hidden_tests" / "pytest.ini").write_text("[pytest]\npython_files = test_*.py\n")
    source = tmp_path / "course" / course_config.SOURCE_DIR / "toy"
    source.mkdir(parents=True)
    (source / "toy.py").write_text(REFERENCE)
    return course_config.Assignment(
        name="toy", title="A toy", tasks=(course_config.Task("T", "Two small functions", 3, 3),), runs=(),
        student_file="toy.py", notebook="toy.ipynb", public_checks="", helpers=(),
        grader_dir=grader, root=tmp_path / "course")


def grade(assignment, folder, code):
    folder.mkdir()
    (folder / "toy.py").write_text(code)
    results, feedback, _ = grade_submission(assignment, folder)
    return results, feedback


def test_a_toy_assignment_grades_end_to_end(toy, tmp_path):
    assert sum(f.grading["points"] for _, f in hidden_tests(toy)) == toy.task("T").auto_points
    results, feedback = grade(toy, tmp_path / "right", REFERENCE)
    assert results["score"] == 3, feedback
    results, feedback = grade(toy, tmp_path / "half", REFERENCE.replace("return a + b", "return a - b"))
    assert results["score"] == 1
    assert "add(a, b) should return a + b" in feedback
    results, feedback = grade(toy, tmp_path / "forged", "def add(a, b):\n    return 0\n\n"
                                                        "def scale(xs, k):\n    return xs\n")
    assert results["score"] == 0
