"""One folder per assignment: its grading, never released and never seen by the worker, except
for probes/.

    graders/<name>/probes/        the only assignment code the sandbox sees: probes.py (PROBES,
                                  error_text) and the seeded inputs it draws
    graders/<name>/hidden_tests/  pytest tests run in the grader's process on the observations
    graders/<name>/catalog/       variants, mutants, hostile and malformed submissions (selfcheck)
    graders/<name>/...            the math the hidden tests judge with

The engine finds an assignment's folder here by the assignment's name in course_config.py.
"""

import importlib
from pathlib import Path

GRADERS_DIR = Path(__file__).resolve().parent


def folder(assignment):
    return GRADERS_DIR / assignment.name


def probe_dir(assignment):
    return folder(assignment) / "probes"


def hidden_tests_dir(assignment):
    return folder(assignment) / "hidden_tests"


def probe_names(assignment):
    """The names of the assignment's probes, sorted (its probes module's PROBES)."""
    module = importlib.import_module(f"{__name__}.{assignment.name}.probes.probes")
    return sorted(module.PROBES)


def catalog(assignment):
    """The assignment's catalog module (REFERENCE, BLANK, VARIANTS, MUTANTS, HOSTILE, MALFORMED)."""
    return importlib.import_module(f"{__name__}.{assignment.name}.catalog")
