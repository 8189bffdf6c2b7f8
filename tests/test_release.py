"""The student release: generated from the single source, in sync, and free of solutions."""

import math
import types

import pytest
import torch

from autograder.authoring.release import (TODO, ReleaseError, _grade_id, inject_points, release,
                                          required_manual_points, source_files, strip_solutions)
import course_config


def solution_regions(assignment):
    text = assignment.reference_file.read_text()
    return strip_solutions(text)[1], text


def test_release_is_in_sync_with_the_source(assignment):
    assert release(assignment, check=True) == [], "run `python -m autograder release vae` and commit release/"


def test_release_check_notices_a_change(assignment, tmp_path):
    import shutil
    changed = tmp_path / "release"
    shutil.copytree(assignment.release_dir, changed)
    (changed / assignment.student_file).write_text("# edited by hand\n")
    (changed / "extra.txt").write_text("not generated\n")
    assert release(assignment, check=True, release_dir=changed) == ["extra.txt", assignment.student_file]


def test_no_solution_line_survives_in_the_release(assignment):
    regions, source = solution_regions(assignment)
    released = (assignment.release_dir / assignment.student_file).read_text()
    given = {line.strip() for line in strip_solutions(source)[0].splitlines()}
    released_lines = {line.strip() for line in released.splitlines()}
    for task, lines in regions:
        for line in lines:
            code = line.strip()
            if code and code not in given:
                assert code not in released_lines, f"solution line of TODO ({task}) in the release: {code}"
                if len(code) > 25:
                    assert code not in released, f"solution text of TODO ({task}) in the release: {code}"
    assert released_lines <= given | {l.strip() for l in released.splitlines() if "NotImplementedError" in l}


def test_every_solution_region_becomes_a_todo_and_a_stub(assignment):
    regions, _ = solution_regions(assignment)
    released = (assignment.release_dir / assignment.student_file).read_text().splitlines()
    stubs = [i for i, line in enumerate(released) if "raise NotImplementedError" in line]
    assert len(stubs) == len(regions) > 0
    for index, (task, _) in zip(stubs, regions):
        assert f"TODO ({task})" in released[index]
        above = released[index - 1].strip()
        assert above.startswith("#"), f"the stub at line {index + 1} is not under its TODO comment"
    tasks = {task for task, _ in regions}
    assert tasks == {"A.1", "B.2", "C", "bonus"}


def test_stripper_keeps_indentation_and_rejects_broken_markers():
    source = "def f():\n    # TODO (X): write it\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    released, regions = strip_solutions(source)
    assert released == 'def f():\n    # TODO (X): write it\n    raise NotImplementedError("TODO (X) in vae.py is not done yet")\n'
    assert regions == [("X", ["    return 1\n"])]
    broken = {
        "no TODO": "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n",
        "never closed": "# TODO (X): a\n### BEGIN SOLUTION\ny = 2\n",
        "nested": "# TODO (X): a\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
        "stray end": "x = 1\n### END SOLUTION\n",
    }
    for why, text in broken.items():
        with pytest.raises(ReleaseError, match=r"vae\.py"):
            strip_solutions(text)


def test_nbgrader_is_told_to_leave_python_files_alone():
    from traitlets.config import Config
    config = course_config.configure_nbgrader(Config(), db_dir=course_config.CACHE_DIR)
    assert "*.py" in config.CourseDirectory.ignore
    assert config.CourseDirectory.source_directory == course_config.SOURCE_DIR
    assert config.CourseDirectory.release_directory == course_config.RELEASE_DIR


def bare(kind, **sizes):
    return types.SimpleNamespace(autoencoder_type=kind, n_dims_code=2, n_dims_data=784, hidden_layer_size=512, **sizes)


def test_released_vae_imports_and_every_todo_raises(released_vae):
    todo = pytest.raises(NotImplementedError, match=r"TODO \(")
    with todo:
        released_vae.Autoencoder("ae")
    with todo:
        released_vae.Autoencoder.encode(bare("ae"), torch.zeros(2, 784))
    with todo:
        released_vae.Autoencoder.encode(bare("vae"), torch.zeros(2, 784))
    with todo:
        released_vae.Autoencoder.decode(bare("ae"), torch.zeros(2, 2))
    with todo:
        released_vae.Autoencoder.loss_function(bare("vae"), torch.full((2, 4), 0.5), torch.ones(2, 4),
                                               torch.zeros(2, 2), torch.zeros(2, 2))
    with todo:
        released_vae.monte_carlo_loss(bare("vae"), torch.zeros(2, 784), 3, torch.zeros(3, 2, 2))
    with todo:
        released_vae.encode_dataset(torch.nn.Linear(1, 1), [])
    with todo:
        released_vae.celeba_subset(list(range(10)), 5)
    with todo:
        released_vae.celeba_transform(64)
    # The given code works in the release.
    assert released_vae._set_latent_vectors().shape == (400, 2)
    loss, bce, kld = released_vae.Autoencoder.loss_function(bare("ae"), torch.full((2, 4), 0.5), torch.ones(2, 4),
                                                            None, None)
    assert kld == 0 and torch.isclose(bce, torch.tensor(8 * math.log(2)))   # BCE of p = 0.5 is ln 2 per pixel


def test_release_has_no_solution_for_the_reference_names(assignment):
    """The release's TODO comments say what to write, never the code itself."""
    released = (assignment.release_dir / assignment.student_file).read_text()
    for giveaway in ("enc_logvar", "logvar.exp() - logvar", "mu.pow(2)", "randperm(len(dataset)", "CenterCrop("):
        assert giveaway not in released, giveaway


def test_released_student_file_is_short_with_every_todo_in_its_first_half(assignment):
    """Students read the file top-down: under 350 lines, their work before the given plumbing."""
    lines = (assignment.release_dir / assignment.student_file).read_text().splitlines()
    assert len(lines) < 350, f"the released {assignment.student_file} has {len(lines)} lines"
    todos = [number for number, line in enumerate(lines, start=1)
             if TODO.match(line) or "raise NotImplementedError" in line]
    assert todos and max(todos) <= len(lines) / 2, f"TODO lines {todos} of {len(lines)}"


def test_notes_for_instructors_are_never_released(assignment):
    notes = assignment.source_dir / "INSTRUCTORS.md"
    assert notes.is_file()
    assert notes not in source_files(assignment)
    assert not (assignment.release_dir / "INSTRUCTORS.md").exists()


def notebook_with(*cells):
    return {"cells": [{"cell_type": "markdown", "source": source, "metadata": {"nbgrader": meta}}
                      for meta, source in cells]}


def test_inject_points_counts_each_task_once_and_the_bonus_as_extra_credit(assignment):
    required = [t for t in assignment.tasks if t.manual_points and not t.bonus]
    bonus = next(t for t in assignment.tasks if t.bonus)
    cells = [({"grade": True, "grade_id": _grade_id(t.id), "points": 99}, "answer") for t in required]
    bonus_cell = ({"grade": True, "grade_id": _grade_id(bonus.id), "points": 99},
                  f"Bonus answer ({bonus.manual_points} points of extra credit)")
    notebook = inject_points(notebook_with(*cells, bonus_cell), assignment)
    points = [c["metadata"]["nbgrader"]["points"] for c in notebook["cells"]]
    assert points == [t.manual_points for t in required] + [0]
    assert sum(points) == required_manual_points(assignment)

    twice = dict(cells[0][0], task=True)
    with pytest.raises(ReleaseError, match="twice"):
        inject_points(notebook_with((twice, "x"), *cells[1:], bonus_cell), assignment)
    with pytest.raises(ReleaseError, match="extra credit"):
        inject_points(notebook_with(*cells, (bonus_cell[0], "Bonus answer")), assignment)
    with pytest.raises(ReleaseError, match="no graded cell"):
        inject_points(notebook_with(*cells[1:], bonus_cell), assignment)
