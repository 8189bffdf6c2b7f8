"""Tests of the tests: the grader against the selfcheck's catalog of submissions.

- every catalog entry builds (each edit still applies exactly once to the reference);
- `python -m autograder selfcheck vae --fast --smoke` passes (the whole catalog: `make selfcheck`): the reference earns every autograded point,
  the release none, correct variants the reference's score, each mutant loses points in its task
  and only there, every hidden test is failed by some mutant, hostile and malformed submissions
  earn nothing unearned and disturb nothing (see autograder/selfcheck.py).
"""

import subprocess
import sys
import time

import pytest

import course_config
from autograder.engine import sandbox
from autograder.qa import catalog, selfcheck
from conftest import ROOT

SELFCHECK_TIMEOUT = 900         # seconds; the smoke part takes about 2 minutes on 2 cores


def test_every_catalog_entry_builds(assignment, tmp_path):
    if not (assignment.solutions_dir / "results").is_dir():
        pytest.fail(f"{assignment.solutions_dir / 'results'} is missing: run `python -m autograder reference vae`")
    results = selfcheck.reference_results(assignment, tmp_path / "reference-results")
    context = catalog.Context(port=9, kit_root=str(ROOT), batch_out=str(tmp_path / "batch"))
    kinds = {}
    for entry in catalog.entries_for(assignment):
        folder = catalog.build(entry, assignment, context, results, tmp_path / entry.name)
        assert folder.is_dir()
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
    assert kinds["variant"] >= 5 and kinds["mutant"] >= 20 and kinds["hostile"] >= 12 and kinds["malformed"] >= 8


def bwrap_usable():
    path = sandbox.bwrap_path()
    return path is not None and sandbox.bwrap_works(path)


@pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap (bwrap) is missing or cannot create namespaces here; "
                                               "the hostile catalog entries need the sandbox")
def test_selfcheck_smoke_passes():
    """The smoke part of the catalog (make test); the whole catalog is `make selfcheck` (~10 min)."""
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "autograder", "selfcheck", course_config.VAE.name, "--fast",
                                "--smoke"],
                               cwd=ROOT, capture_output=True, text=True, timeout=SELFCHECK_TIMEOUT)
    print(completed.stdout)
    print(f"selfcheck took {time.monotonic() - started:.0f} s")
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-4000:]
