"""The student notebook and the public checks.

- The source notebook (reference vae.py) runs top to bottom on tiny settings: one epoch on the
  generated digits, on the CPU, offline.
- check_vae.py passes on the reference vae.py and fails, saying TODO, on the released vae.py.
- The points quoted in the notebook and the handout agree with course_config.py.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course_config  # noqa: E402

ASSIGNMENT = course_config.VAE
SOURCE = ASSIGNMENT.source_dir
RELEASE = ASSIGNMENT.release_dir

TINY_PARAMETERS = """N_EPOCHS = 1
DATASET = "synthetic-digits"
DATA_DIR = "./data"
RESULTS_DIR = "results"
DEVICE = "cpu"
RETRAIN = True"""


def read_notebook(path):
    return nbformat.read(path, as_version=4)


def parameters_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return cells[0]


# --- The source notebook's structure ----------------------------------------------------------

def test_source_notebook_is_valid_and_clean():
    notebook = read_notebook(SOURCE / ASSIGNMENT.notebook)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    ids = [cell.id for cell in notebook.cells]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {cell.id} has stored outputs"
    # The parameters cell holds only simple assignments, one per line.
    for line in parameters_cell(notebook).source.splitlines():
        assert re.fullmatch(r"[A-Z_]+ = (\d+|\"[^\"]*\"|True|False)", line), line


def test_graded_cells_match_course_config():
    notebook = read_notebook(SOURCE / ASSIGNMENT.notebook)
    graded = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader for c in notebook.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    # The bonus is extra credit: 0 in nbgrader (its points are named in its text), so that nbgrader's
    # maximum is the required manual points; no cell is both a grade and a task cell (counted twice).
    expected = {t.id.replace(".", "") + "-manual": 0 if t.bonus else t.manual_points
                for t in ASSIGNMENT.tasks if t.manual_points}
    assert {grade_id: meta["points"] for grade_id, meta in graded.items()} == expected
    assert not [c.id for c in notebook.cells if c.metadata.get("nbgrader", {}).get("task")]
    assert sum(expected.values()) == sum(t.manual_points for t in ASSIGNMENT.tasks if not t.bonus)
    bonus = next(t for t in ASSIGNMENT.tasks if t.bonus)
    bonus_cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "bonus-manual")
    assert f"{bonus.manual_points} points of extra credit" in bonus_cell.source


def points_table(markdown):
    """task id -> (points, auto, manual) from a Markdown table whose rows start with a task id."""
    task_ids = {t.id for t in ASSIGNMENT.tasks}
    table = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in task_ids:
            numbers = [int(c) for c in cells[1:] if c.isdigit()]
            table[cells[0]] = tuple(numbers[-3:])
    return table


@pytest.mark.parametrize("where", ["notebook", "handout"])
def test_quoted_points_match_course_config(where):
    if where == "notebook":
        text = "\n".join(c.source for c in read_notebook(SOURCE / ASSIGNMENT.notebook).cells)
    else:
        text = (SOURCE / ASSIGNMENT.handout).read_text(encoding="utf-8")
    expected = {t.id: (t.points, t.auto_points, t.manual_points) for t in ASSIGNMENT.tasks}
    assert points_table(text) == expected


def test_release_holds_no_model_answers():
    path = RELEASE / ASSIGNMENT.notebook
    if not path.is_file():
        pytest.skip("release/vae/vae.ipynb not generated yet: run `python -m autograder release vae`")
    text = path.read_text(encoding="utf-8")
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "Rubric", "Model answer"):
        assert secret not in text
    assert text.count("YOUR ANSWER HERE") == 4          # B.1, B.2, C and the bonus
    assert text.count("raise NotImplementedError()") == 1   # A.2's plot_losses


def validate(path):
    """nbgrader validate's verdict on a notebook, without executing it (its grade cells here are
    written answers, judged by their checksums, not by running code)."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput
    from nbgrader.validator import Validator
    return Validator(preprocessors=[CheckCellMetadata, ClearOutput]).validate(str(path))


def test_nbgrader_validate_flags_only_the_required_answers(tmp_path):
    """Untouched, the release is flagged for the four required answers, never for the optional
    bonus; once they are answered, and on the source notebook with its model answers, it passes."""
    path = RELEASE / ASSIGNMENT.notebook
    if not path.is_file():
        pytest.skip("release/vae/vae.ipynb not generated yet: run `python -m autograder release vae`")
    failed = validate(path).get("failed", [])
    assert len(failed) == 4, [f["source"][:60] for f in failed]
    assert any("def plot_losses" in f["source"] for f in failed)
    assert not any("extra credit" in f["source"] for f in failed)

    answered = read_notebook(path)
    for cell in answered.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("points", 0) > 0:
            cell.source = cell.source.replace("YOUR ANSWER HERE", "My answer.").replace(
                "raise NotImplementedError()", "ax.plot([0, 1], [2, 1], label='train')")
    nbformat.write(answered, tmp_path / "answered.ipynb")
    assert validate(tmp_path / "answered.ipynb") == {}
    assert validate(SOURCE / ASSIGNMENT.notebook) == {}


# --- The source notebook runs ----------------------------------------------------------------

def test_notebook_runs_on_tiny_settings(tmp_path):
    from nbclient import NotebookClient

    shutil.copy(SOURCE / ASSIGNMENT.student_file, tmp_path)
    for helper in ASSIGNMENT.helper_paths:            # given modules vae.py imports (kit_data.py)
        shutil.copy(helper, tmp_path)
    notebook = read_notebook(SOURCE / ASSIGNMENT.notebook)
    parameters_cell(notebook).source = TINY_PARAMETERS
    client = NotebookClient(notebook, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()   # raises CellExecutionError on the first failing cell

    for autoencoder_type in ("ae", "vae"):
        results = tmp_path / "results" / f"AE-arch={autoencoder_type}(512)-lr=0.001-ep=1-data=synthetic-digits"
        for name in ("perf_metrics.csv", "model.pt", "reconstruction_0.png", "sample_0.png",
                     "manifold_digits.png", "manifold.png"):
            assert (results / name).is_file(), f"{results.name}/{name} is missing"
    assert not list((tmp_path / "results").glob("*celeba*")), "the notebook must never train the bonus"

    outputs = {cell.id: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}
    images = {cell_id: sum("image/png" in o.get("data", {}) for o in cell_outputs)
              for cell_id, cell_outputs in outputs.items()}
    assert images["A2-manual"] >= 1                              # the student's loss curves (plot_losses)
    assert images["A2-train"] >= 2 and images["B2-train"] >= 3   # reconstructions, samples (+ VAE's curves)
    assert images["C-show"] >= 1
    text = json.dumps(outputs)
    assert "The bonus was not run" in text


# --- The public checks -----------------------------------------------------------------------

def run_checks(folder, vae_file):
    shutil.copy(vae_file, folder / "vae.py")
    for helper in ASSIGNMENT.helper_paths:
        shutil.copy(helper, folder)
    shutil.copy(SOURCE / ASSIGNMENT.public_checks, folder)
    # Run from another directory: check_vae.py must import the vae.py next to it.
    return subprocess.run([sys.executable, str(folder / ASSIGNMENT.public_checks)], cwd=folder.parent,
                          capture_output=True, text=True, timeout=120)


def test_public_checks_pass_on_the_reference(tmp_path):
    (tmp_path / "submission").mkdir()
    result = run_checks(tmp_path / "submission", ASSIGNMENT.reference_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "TODO" not in result.stdout


def test_public_checks_fail_on_the_release(tmp_path):
    released = RELEASE / ASSIGNMENT.student_file
    if not released.is_file():
        pytest.skip("release/vae/vae.py not generated yet: run `python -m autograder release vae`")
    (tmp_path / "submission").mkdir()
    result = run_checks(tmp_path / "submission", released)
    assert result.returncode != 0, result.stdout
    assert "TODO" in result.stdout and "PASS" not in result.stdout, result.stdout


def test_public_checks_report_a_broken_file(tmp_path):
    (tmp_path / "submission").mkdir()
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    result = run_checks(tmp_path / "submission", broken)
    assert result.returncode != 0
    assert "FAIL" in result.stdout and "cannot be imported" in result.stdout
