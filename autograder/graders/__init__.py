"""One folder per assignment: its grading, never released and never seen by the worker, except
for probes/.

    graders/<name>/probes/        the only assignment code the sandbox sees: probes.py (PROBES,
                                  error_text) and the seeded inputs it draws
    graders/<name>/hidden_tests/  pytest tests run in the grader's process on the observations
    graders/<name>/catalog/       variants, mutants, hostile and malformed submissions (selfcheck)
    graders/<name>/...            the math the hidden tests judge with

The engine finds an assignment's folder here by the assignment's name in course_config.py, or
at the assignment's own `grader_dir` (a course kept outside the kit).
"""

import importlib
import importlib.util
import sys
from pathlib import Path

GRADERS_DIR = Path(__file__).resolve().parent


def folder(assignment):
    return Path(getattr(assignment, "grader_dir", None) or GRADERS_DIR / assignment.name)


def probe_dir(assignment):
    return folder(assignment) / "probes"


def hidden_tests_dir(assignment):
    return folder(assignment) / "hidden_tests"


def _module(assignment, *parts):
    """A module of the assignment's grader folder, e.g. _module(a, "probes", "probes")."""
    if folder(assignment) == GRADERS_DIR / assignment.name:
        return importlib.import_module(".".join([__name__, assignment.name, *parts]))
    name = "_".join(["kit_grader", assignment.name, *parts])
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, folder(assignment).joinpath(*parts[:-1], parts[-1] + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def probe_names(assignment):
    """The names of the assignment's probes, sorted (its probes module's PROBES)."""
    return sorted(_module(assignment, "probes", "probes").PROBES)


def hidden_test_module(assignment, stem):
    """The hidden test module hidden_tests/<stem>.py, imported (for listings and point checks)."""
    return _module(assignment, "hidden_tests", stem)


def catalog(assignment):
    """The assignment's catalog module (REFERENCE, BLANK, VARIANTS, MUTANTS, HOSTILE, MALFORMED)."""
    return importlib.import_module(f"{__name__}.{assignment.name}.catalog")
