"""The reference runs: the command writes the whole solutions structure; the committed bands are
consistent with the runs that produced them; the grader reads them."""

import csv
import json
import statistics

import pytest

from autograder.engine.grade import ResultFiles, load_bands
from autograder.engine.judge import png_size
from autograder.authoring.reference import run_reference


def check_bands(metrics, tolerances):
    """Every band holds the seeds' finals and follows the rule metrics.json states: measured (halfway
    to where the recorded short runs land, low side widened by the generalisation gap) when short
    runs were recorded, else mean +- (sigmas * std + relative * |mean|), the relative margin wider
    when the runs did not use MNIST's standard split."""
    relative = tolerances.band_relative if metrics["standard_split"] else tolerances.band_relative_nonstandard
    short_runs = metrics.get("short_runs", {}).get("final", {})
    for task, run in metrics["runs"].items():
        for column, band in metrics["bands"][task].items():
            finals = [final[column] for final in run["final"].values()]
            assert band["mean"] == pytest.approx(statistics.fmean(finals))
            std = statistics.stdev(finals) if len(finals) > 1 else 0.0
            assert band["std"] == pytest.approx(std)
            if task in short_runs:
                other = "train_loss" if column == "test_loss" else "test_loss"
                short = statistics.fmean(final[column] for final in short_runs[task].values())
                gap = abs(band["mean"] - statistics.fmean(final[other] for final in run["final"].values()))
                assert band["high"] == pytest.approx(band["mean"] + max(tolerances.band_sigmas * std,
                                                                        (short - band["mean"]) / 2))
                assert band["low"] == pytest.approx(band["mean"] - tolerances.band_sigmas * std - gap)
                assert short > band["high"], "a short run must land outside the band"
            else:
                margin = tolerances.band_sigmas * std + relative * abs(band["mean"])
                assert band["low"] == pytest.approx(band["mean"] - margin)
                assert band["high"] == pytest.approx(band["mean"] + margin)
            assert all(band["low"] <= value <= band["high"] for value in finals)


def check_results_folder(results, metrics, assignment, epochs):
    for task, run in metrics["runs"].items():
        folder = results / run["folder"]
        with open(folder / "perf_metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == epochs
        canonical = run["final"][str(metrics["canonical_seed"])]
        assert float(rows[-1]["test_loss"]) == pytest.approx(canonical["test_loss"])
        side = assignment.image_side["mnist"]
        assert png_size(folder / f"sample_{epochs - 1}.png") == assignment.samples.size(side)
        assert png_size(folder / f"reconstruction_{epochs - 1}.png") == assignment.reconstruction.size(side)
        assert png_size(folder / "manifold_digits.png") == assignment.manifold.size(side)
        for name in ("manifold.png", "loss_curves.png", "model.pt"):
            assert (folder / name).is_file()


def test_reference_command_writes_the_whole_structure(assignment, tmp_path):
    out = run_reference(assignment, device="cpu", epochs=2, n_seeds=2, dataset="synthetic-digits",
                        data_dir=tmp_path / "data", out_dir=tmp_path / "solutions")
    assert {p.name for p in out.iterdir()} == {"results", "metrics.json", "provenance.json", "README.md",
                                               assignment.notebook}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic-digits" and metrics["standard_split"] is False
    assert sorted(metrics["runs"]) == ["A.2", "B.2"]
    assert {p.name for p in (out / "results").iterdir()} == {
        "AE-arch=ae(512)-lr=0.001-ep=2", "AE-arch=vae(512)-lr=0.001-ep=2"}
    check_bands(metrics, assignment.tolerances)
    check_results_folder(out / "results", metrics, assignment, epochs=2)
    provenance = json.loads((out / "provenance.json").read_text())
    assert "NOT MNIST" in provenance["data"]["name"]
    assert provenance["device"]["type"] == "cpu" and provenance["versions"]["torch"]
    assert provenance["bonus"].startswith("not run") and provenance["seeds"] == list(assignment.seeds.reference[:2])
    assert set(provenance["wall_seconds_per_model"]) == {"A.2", "B.2"}
    notebook = json.loads((out / assignment.notebook).read_text())
    outputs = [o for cell in notebook["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the solution notebook shows no figure"
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert "NOT MNIST" in (out / "README.md").read_text()


def test_committed_solutions_are_consistent(assignment):
    metrics = load_bands(assignment)
    if metrics is None:
        pytest.fail("solutions/vae/metrics.json is missing: run `python -m autograder reference vae`")
    check_bands(metrics, assignment.tolerances)
    for task in ("A.2", "B.2"):
        assert metrics["runs"][task]["folder"] == assignment.run(task).folder
    check_results_folder(assignment.solutions_dir / "results", metrics, assignment, epochs=metrics["epochs"])
    provenance = json.loads((assignment.solutions_dir / "provenance.json").read_text())
    assert provenance["data"]["standard_split"] == metrics["standard_split"]
    assert provenance["epochs"] == metrics["epochs"] == assignment.run("A.2").n_epochs
    bonus = metrics["runs"].get("bonus")
    assert bonus is not None or provenance["bonus"].startswith("not run")


def test_grader_reads_the_bands(assignment):
    metrics = load_bands(assignment)
    files = ResultFiles(None, assignment, metrics)
    for task in ("A.2", "B.2"):
        band = metrics["bands"][task]["test_loss"]
        assert files.band(task, "test_loss") == (band["low"], band["high"])
    assert files.band("bonus", "test_loss") is None or "bonus" in metrics["bands"]
