"""Train the reference solutions and write solutions/<assignment>/.

    python -m autograder reference vae [--device auto] [--epochs 100] [--seeds 3] [--dataset auto]

Trains, with the single source's own vae.py (imported from assignments/, never copied), the
AE and the VAE for every seed (and the CelebA bonus when CelebA is present), then writes:
results/ (the canonical seed's folders, named exactly as a student's), metrics.json (final
losses per seed and the tolerance bands the grader applies), provenance.json and README.md
(what data, split, device, versions and commit produced them) and the executed solution notebook.
"""

import contextlib
import datetime
import hashlib
import importlib.util
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import course_config
import kit_data
from .. import KIT_ROOT


def load_reference_module(assignment):
    """The reference vae.py, imported from the source folder."""
    spec = importlib.util.spec_from_file_location("vae_reference", assignment.reference_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def choose_dataset(module, requested, data_dir):
    """(dataset name, data_dir): full MNIST where present, else its test split, else generated
    digits. (module: unused, kept for the callers' symmetry with describe_data.)"""
    if requested != "auto":
        return requested, data_dir
    if kit_data.mnist_paths(data_dir, "train") and kit_data.mnist_paths(data_dir, "test"):
        return "mnist", data_dir
    for directory in (data_dir, course_config.SHARED_DATA_DIR):
        if kit_data.mnist_paths(directory, "test"):
            return "mnist-test-split", directory
    return "synthetic-digits", data_dir


def describe_data(module, dataset, data_dir, assignment):
    """What the runs were trained on, for the provenance."""
    if dataset == "mnist":
        return {"name": "MNIST", "split": "the official 60,000 training and 10,000 test images",
                "standard_split": True, "files": _file_digests(kit_data.mnist_paths(data_dir, "train") + kit_data.mnist_paths(data_dir, "test"))}
    if dataset == "mnist-test-split":
        return {"name": "MNIST test split only", "standard_split": False,
                "split": (f"MNIST's official 10,000 test images (the training files were not available), "
                          f"shuffled with torch.Generator seed {assignment.seeds.split} and cut into 8,000 "
                          "images for training and 2,000 for testing (vae.py --dataset mnist-test-split)"),
                "files": _file_digests(kit_data.mnist_paths(data_dir, "test"))}
    if dataset == "synthetic-digits":
        return {"name": "generated digit-like images (NOT MNIST)", "standard_split": False,
                "split": "10,000 training and 2,000 test images typeset from matplotlib's fonts and randomly "
                         "distorted (vae.py --dataset synthetic-digits)"}
    return {"name": dataset, "standard_split": False, "split": "see vae.py"}


def _file_digests(paths):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in paths}


def device_description(device):
    import torch
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device)}
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    import os
    return {"type": "cpu", "name": name, "threads": torch.get_num_threads(), "cores": os.cpu_count()}


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=KIT_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "assignments", "autograder"], cwd=KIT_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def versions():
    import numpy
    import torch
    import torchvision
    found = {"python": platform.python_version(), "torch": torch.__version__,
             "torchvision": torchvision.__version__, "numpy": numpy.__version__}
    with contextlib.suppress(ImportError):
        import nbgrader
        found["nbgrader"] = nbgrader.__version__
    return found


def relative_margin(tolerances, standard_split):
    """The band's relative margin: wider when the reference did not see MNIST's standard split."""
    return tolerances.band_relative if standard_split else tolerances.band_relative_nonstandard


def band(values, tolerances, standard_split=True):
    """mean +- (band_sigmas * std + relative margin * |mean|) of the seeds' final values."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    margin = tolerances.band_sigmas * std + relative_margin(tolerances, standard_split) * abs(mean)
    return {"mean": mean, "std": std, "margin": margin, "low": mean - margin, "high": mean + margin,
            "seeds": len(values)}


SHORT_EPOCHS = 5     # a run this short must fall outside the bands (measured, see measured_band)


def measured_band(finals, short_finals, other_column_finals, tolerances):
    """A loss band sized on measured differences, not on a flat percentage.

    finals: the seeds' final values of one column; short_finals: the same seeds' values after a
    short run (SHORT_EPOCHS epochs, same data and seeds); other_column_finals: the seeds' final
    values of the other loss column (train vs test). The band is
        high = mean + max(sigmas * std, (short mean - mean) / 2): halfway to where a short run lands,
        low  = mean - (sigmas * std + generalisation gap): the gap |mean test - mean train| is what
               more training data can close (a student's run on other data sees more images).
    A short run therefore lands outside the band by construction (its loss is higher)."""
    mean = statistics.fmean(finals)
    std = statistics.stdev(finals) if len(finals) > 1 else 0.0
    short_mean = statistics.fmean(short_finals)
    gap = abs(mean - statistics.fmean(other_column_finals))
    spread = tolerances.band_sigmas * std
    high_margin = max(spread, (short_mean - mean) / 2)
    low_margin = spread + gap
    return {"mean": mean, "std": std, "short_mean": short_mean, "generalisation_gap": gap,
            "low": mean - low_margin, "high": mean + high_margin, "seeds": len(finals)}


MEASURED_BAND_RULE = (f"high = mean + max(3 * std, (mean after {SHORT_EPOCHS} epochs - mean) / 2), "
                      "low = mean - (3 * std + |mean test loss - mean train loss|), over the seeds' final "
                      f"values; the {SHORT_EPOCHS}-epoch runs use the same seeds and data (short_runs), so a "
                      "short run falls outside")


def add_measured_bands(assignment, metrics, short_finals, short_epochs=SHORT_EPOCHS):
    """Replace metrics' bands by measured_band's, with the short runs' finals recorded."""
    metrics["band_rule"] = MEASURED_BAND_RULE.replace("3 *", f"{assignment.tolerances.band_sigmas} *")
    metrics["short_runs"] = {"epochs": short_epochs, "final": {}}
    for task, run in metrics["runs"].items():
        finals = run["final"]
        short = short_finals[task]
        metrics["short_runs"]["final"][task] = {str(s): f for s, f in short.items()}
        bands = {}
        for column, other in (("train_loss", "test_loss"), ("test_loss", "train_loss")):
            values = [finals[str(s)][column] for s in metrics["seeds"]]
            bands[column] = measured_band(values, [short[s][column] for s in short],
                                          [finals[str(s)][other] for s in metrics["seeds"]],
                                          assignment.tolerances)
            if not bands[column]["low"] <= statistics.fmean(values) <= bands[column]["high"] \
                    or bands[column]["short_mean"] <= bands[column]["high"]:
                raise RuntimeError(f"{task} {column}: the measured band {bands[column]} does not separate the "
                                   f"{short_epochs}-epoch runs from the full ones")
        metrics["bands"][task] = bands
    return metrics


def measure_short_runs(assignment, dataset, data_dir, seeds, runs=None, epochs=SHORT_EPOCHS, device="cpu"):
    """Train every run for every seed for a few epochs; returns {task: {seed: final metrics}}."""
    module = load_reference_module(assignment)
    runs = [r for r in assignment.runs if r.dataset != "celeba"] if runs is None else runs
    with tempfile.TemporaryDirectory(prefix="vaekit-short-") as scratch:
        trained = train_runs(module, assignment, runs, dataset, Path(data_dir), epochs, seeds, device, Path(scratch))
    return {task: {seed: final for seed, (_, final, _) in per_seed.items()} for task, per_seed in trained.items()}


def remeasure_bands(assignment, data_dir=None, device="cpu"):
    """Measure the short runs and rewrite metrics.json's bands (and the provenance's note) without
    retraining the full reference: the committed finals per seed are kept."""
    out_dir = assignment.solutions_dir
    metrics = json.loads((out_dir / "metrics.json").read_text())
    data_dir = Path(data_dir or course_config.SHARED_DATA_DIR)
    started = time.perf_counter()
    short = measure_short_runs(assignment, metrics["dataset"], data_dir, metrics["seeds"], device=device)
    add_measured_bands(assignment, metrics, short)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    provenance_path = out_dir / "provenance.json"
    provenance = json.loads(provenance_path.read_text())
    provenance["bands"] = {
        "rule": metrics["band_rule"],
        "short_runs": (f"{SHORT_EPOCHS} epochs per seed ({', '.join(map(str, metrics['seeds']))}) on "
                       f"{metrics['dataset']}, device {device}, commit {git_commit()}, "
                       f"{round(time.perf_counter() - started, 1)} s; remeasure_bands() in "
                       "autograder/authoring/reference.py (the 100-epoch runs were not retrained)"),
        "what_they_are": ("the final train and test losses per image a 100-epoch run of the given code may "
                          "reach; the reference saw only MNIST's test split, so a student's full-MNIST run "
                          "is judged against a band whose low side allows for the reference's "
                          "generalisation gap (more data), and whose high side stops halfway to where a "
                          f"{SHORT_EPOCHS}-epoch run lands"),
    }
    provenance_path.write_text(json.dumps(provenance, indent=2) + "\n")
    (out_dir / "README.md").write_text(readme(assignment, metrics, provenance))
    return metrics


def train_runs(module, assignment, runs, dataset, data_dir, epochs, seeds, device, scratch):
    """Train every run for every seed; returns {task: {seed: (folder, final metrics, seconds)}}."""
    trained = {}
    for run in runs:
        trained[run.task] = {}
        run_dataset = dataset if run.dataset == "mnist" else run.dataset     # the digits, or the bonus's faces
        for seed in seeds:
            argv = run.argv(n_epochs=epochs, dataset=run_dataset) + [
                "--seed", str(seed), "--data_dir", str(data_dir), "--device", device,
                "--results_dir", str(scratch / f"seed{seed}")]
            print(f"reference: training {run.autoencoder_type} ({run.task}) on {run_dataset}, seed {seed}, "
                  f"{epochs} epochs", flush=True)
            started = time.perf_counter()
            folder = module.main(argv)
            seconds = time.perf_counter() - started
            metrics = kit_data.read_metrics(folder / "perf_metrics.csv")
            final = {k: v[-1] for k, v in metrics.items() if k not in ("epoch", "seconds")}
            trained[run.task][seed] = (folder, final, seconds)
    return trained


def run_reference(assignment, device="auto", epochs=None, n_seeds=3, dataset="auto", data_dir="./data",
                  out_dir=None, notebook=True, runs=None):
    """Train and write the whole solutions folder; returns its Path."""
    module = load_reference_module(assignment)
    out_dir = Path(out_dir or assignment.solutions_dir)
    dataset, data_dir = choose_dataset(module, dataset, Path(data_dir))
    seeds = list(assignment.seeds.reference[:n_seeds])
    runs = [r for r in assignment.runs if r.dataset != "celeba"] if runs is None else runs
    celeba_dir = Path(data_dir) / "celeba"
    bonus = next((r for r in assignment.runs if r.dataset == "celeba"), None)
    bonus_note = "not run: no CelebA folder at " + str(celeba_dir)
    if bonus is not None and (celeba_dir / "img_align_celeba").is_dir():
        runs.append(bonus)
        bonus_note = "run on real CelebA from " + str(celeba_dir)
    epochs = epochs or runs[0].n_epochs
    torch_device = kit_data.pick_device(device)
    commit = git_commit()            # the code that trains, before anything else can change
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vaekit-reference-") as scratch:
        scratch = Path(scratch)
        trained = train_runs(module, assignment, runs, dataset, data_dir, epochs, seeds,
                             str(torch_device), scratch)
        results_dir = out_dir / "results"
        if results_dir.exists():
            shutil.rmtree(results_dir)
        results_dir.mkdir(parents=True)
        standard = describe_data(module, dataset, data_dir, assignment)["standard_split"]
        metrics = {"assignment": assignment.name, "dataset": dataset, "standard_split": standard,
                   "epochs": epochs, "seeds": seeds, "canonical_seed": seeds[0],
                   "band_rule": (f"mean +- ({assignment.tolerances.band_sigmas} * std + "
                                 f"{relative_margin(assignment.tolerances, standard)} * |mean|) of the final "
                                 f"epoch's value over the {len(seeds)} seeds"
                                 + ("" if standard else " (the wider margin of a non-standard split)")),
                   "runs": {}, "bands": {}}
        timing = {}
        for run in runs:
            per_seed = trained[run.task]
            name = module.results_dir_name(run.autoencoder_type, run.hidden_layer_size, run.lr, epochs,
                                           "celeba" if run.dataset == "celeba" else "mnist")
            shutil.copytree(per_seed[seeds[0]][0], results_dir / name)
            finals = {seed: final for seed, (_, final, _) in per_seed.items()}
            metrics["runs"][run.task] = {"folder": name, "autoencoder_type": run.autoencoder_type,
                                         "final": {str(s): f for s, f in finals.items()}}
            metrics["bands"][run.task] = {column: band([f[column] for f in finals.values()],
                                                       assignment.tolerances, standard)
                                          for column in ("train_loss", "test_loss")}
            timing[run.task] = {str(seed): round(seconds, 1) for seed, (_, _, seconds) in per_seed.items()}
        if epochs > SHORT_EPOCHS and len(seeds) > 1:
            short = measure_short_runs(assignment, dataset, data_dir, seeds, runs=runs, device=str(torch_device))
            add_measured_bands(assignment, metrics, short)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    provenance = {
        "command": "python -m autograder " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["reference"] else "run_reference()",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": describe_data(module, dataset, data_dir, assignment),
        "epochs": epochs, "seeds": seeds, "canonical_seed": seeds[0],
        "results_from_seed": seeds[0],
        "device": device_description(torch_device),
        "versions": versions(), "commit": commit,
        "wall_seconds_per_model": timing,
        "wall_seconds_total": round(time.perf_counter() - started, 1),
        "bonus": bonus_note,
        "code": str(assignment.reference_file.relative_to(KIT_ROOT)),
    }
    if notebook:
        provenance["notebook"] = solution_notebook(assignment, out_dir, epochs)
    (out_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (out_dir / "README.md").write_text(readme(assignment, metrics, provenance))
    return out_dir


def solution_notebook(assignment, out_dir, epochs):
    """nbgrader's generate_solution, then executed on the reference results just written."""
    import nbformat
    from nbclient import NotebookClient
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters import GenerateSolution
    from nbgrader.preprocessors import ClearOutput, IncludeHeaderFooter, LockCells
    from traitlets.config import Config

    from .release import inject_points
    with tempfile.TemporaryDirectory(prefix="vaekit-solution-") as scratch:
        scratch = Path(scratch)
        source = scratch / course_config.SOURCE_DIR / assignment.name
        source.mkdir(parents=True)
        path = assignment.source_dir / assignment.notebook
        notebook = inject_points(json.loads(path.read_text(encoding="utf-8")), assignment)
        (source / assignment.notebook).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        config = course_config.configure_nbgrader(Config(), root=scratch, db_dir=scratch)
        config.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput]
        import os
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        api = NbGraderAPI(config=config)
        api.generate_assignment(assignment.name, force=True, create=True)    # registers it in the gradebook
        api.coursedir.assignment_id = assignment.name
        try:
            GenerateSolution(coursedir=api.coursedir, config=config).start()
        except Exception as error:  # noqa: BLE001 (nbgrader raises its own and generic errors)
            return f"not generated: nbgrader generate_solution failed: {error}"
        solution = scratch / course_config.SOLUTIONS_DIR / assignment.name / assignment.notebook
        work = scratch / "run"
        work.mkdir()
        for path in (assignment.reference_file, *assignment.helper_paths):
            shutil.copyfile(path, work / path.name)
        shutil.copytree(out_dir / "results", work / "results")
        notebook = nbformat.read(solution, as_version=4)
        for cell in notebook.cells:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                cell.source = (f'N_EPOCHS = {epochs}\nDATASET = "mnist"\nDATA_DIR = "./data"\n'
                               'RESULTS_DIR = "results"\nDEVICE = "cpu"\nRETRAIN = False')
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(work)}}).execute()
        nbformat.write(notebook, out_dir / assignment.notebook)
    return f"{assignment.notebook}: nbgrader generate_solution, executed on results/ (no retraining)"


def readme(assignment, metrics, provenance):
    data = provenance["data"]
    lines = [f"# Reference solution of `{assignment.name}`: expected figures and loss bands", "",
             "Generated by `python -m autograder reference` from "
             f"`{provenance['code']}`; do not edit by hand.", "",
             f"- **Data:** {data['name']}. {data['split']}.",
             f"- **Epochs:** {provenance['epochs']}; **seeds:** {', '.join(map(str, provenance['seeds']))} "
             f"(the figures in `results/` come from seed {provenance['canonical_seed']}).",
             f"- **Device:** {provenance['device']['type']} ({provenance['device']['name']}).",
             "- **Versions:** " + ", ".join(f"{k} {v}" for k, v in provenance["versions"].items()) + ".",
             f"- **Commit:** {provenance['commit']}.",
             f"- **Bonus (CelebA):** {provenance['bonus']}.",
             f"- **Wall time:** {provenance['wall_seconds_total']} s in all.", ""]
    if not metrics["standard_split"]:
        lines += ["**These runs did not use MNIST's standard train/test split**, so the loss bands below are "
                  "only indicative of a student's full-MNIST run; the grader warns about this in its console "
                  "output. Rerun on a machine with full MNIST (ideally the GPU runner) before grading for real.", ""]
    lines += ["## Final losses per image and the grader's bands", "",
              f"Band rule: {metrics['band_rule']}.", "",
              "| task | run | column | per seed | band |", "| --- | --- | --- | --- | --- |"]
    for task, run in metrics["runs"].items():
        for column, b in metrics["bands"][task].items():
            per_seed = ", ".join(f"{f[column]:.2f}" for f in run["final"].values())
            lines.append(f"| {task} | `{run['folder']}` | {column} | {per_seed} | "
                         f"[{b['low']:.2f}, {b['high']:.2f}] |")
    lines += ["", "## Wall time per model (seconds, per seed)", ""]
    for task, seconds in provenance["wall_seconds_per_model"].items():
        lines.append(f"- {task}: " + ", ".join(f"seed {s}: {t}" for s, t in seconds.items()))
    return "\n".join(lines) + "\n"
