"""Operations on a copy of the reference results/ folder, for catalog entries whose result files
are wrong. Each helper returns an operation: a function (results_dir, assignment) -> None whose
name says what it does. Runs are named by their task id ("A.2", "B.2", "bonus").
"""

import csv
import re
import shutil

LOSS_COLUMNS = ("train_loss", "test_loss", "train_bce", "train_kld", "test_bce", "test_kld")


def _named(name, operation):
    operation.__name__ = operation.__qualname__ = name
    return operation


def _read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _epoch_images(folder):
    """{epoch: [paths]} of the per-epoch images (reconstruction_e.png, sample_e.png)."""
    found = {}
    for path in folder.iterdir():
        match = re.fullmatch(r"(reconstruction|sample)_(\d+)\.png", path.name)
        if match:
            found.setdefault(int(match.group(2)), []).append(path)
    return found


def _cut_to(folder, n_epochs):
    """Keep the first n_epochs rows of perf_metrics.csv; the last kept epoch gets the images of
    the run's last epoch, later epochs lose theirs (as a run that stopped there would have)."""
    header, rows = _read_csv(folder / "perf_metrics.csv")
    _write_csv(folder / "perf_metrics.csv", header, rows[:n_epochs])
    images = _epoch_images(folder)
    last = max(images)
    for path in images[last]:
        shutil.copyfile(path, folder / path.name.replace(f"_{last}.png", f"_{n_epochs - 1}.png"))
    for epoch, paths in images.items():
        if epoch >= n_epochs:
            for path in paths:
                path.unlink()


def drop_run(task_id):
    """The run's folder is missing."""
    def operation(results, assignment):
        shutil.rmtree(results / assignment.run(task_id).folder)
    return _named(f"drop_run({task_id})", operation)


def trained_for(task_id, n_epochs):
    """The run was trained for n_epochs instead of the task's: its folder says ep=n_epochs."""
    def operation(results, assignment):
        run = assignment.run(task_id)
        folder = results / run.folder
        _cut_to(folder, n_epochs)
        folder.rename(results / run.folder.replace(f"-ep={run.n_epochs}", f"-ep={n_epochs}"))
    return _named(f"trained_for({task_id}, {n_epochs})", operation)


def stopped_at(task_id, n_epochs):
    """The run stopped after n_epochs (interrupted) in the task's folder: fewer rows, no last images."""
    def operation(results, assignment):
        _cut_to(results / assignment.run(task_id).folder, n_epochs)
    return _named(f"stopped_at({task_id}, {n_epochs})", operation)


def scale_losses(task_id, factor):
    """Every loss in perf_metrics.csv multiplied by factor (e.g. per batch instead of per image)."""
    def operation(results, assignment):
        path = results / assignment.run(task_id).folder / "perf_metrics.csv"
        header, rows = _read_csv(path)
        columns = [i for i, name in enumerate(header) if name in LOSS_COLUMNS]
        for row in rows:
            for i in columns:
                row[i] = f"{float(row[i]) * factor:.4f}"
        _write_csv(path, header, rows)
    return _named(f"scale_losses({task_id}, {factor})", operation)


def remove_file(task_id, name):
    """A file of the run's folder is missing; "{last}" in name is the last epoch."""
    def operation(results, assignment):
        run = assignment.run(task_id)
        (results / run.folder / name.format(last=run.n_epochs - 1)).unlink()
    return _named(f"remove_file({task_id}, {name})", operation)


def resize_image(task_id, name, size):
    """An image of the run's folder has another size (width, height); "{last}" as in remove_file."""
    def operation(results, assignment):
        from PIL import Image
        run = assignment.run(task_id)
        path = results / run.folder / name.format(last=run.n_epochs - 1)
        with Image.open(path) as image:
            image.resize(size).save(path)
    return _named(f"resize_image({task_id}, {name}, {size})", operation)


def linked_to_solutions():
    """results/ is a symbolic link to the kit's own reference results (wherever the grader keeps them)."""
    def operation(results, assignment):
        shutil.rmtree(results)
        results.symlink_to(assignment.solutions_dir / "results", target_is_directory=True)
    return _named("linked_to_solutions()", operation)


# --- result files that no training of the submitted model produced -----------------------------

def _band_middle(assignment, task_id, column):
    """The middle of the reference runs' band for a loss column (solutions/<name>/metrics.json)."""
    import json
    bands = json.loads((assignment.solutions_dir / "metrics.json").read_text())["bands"][task_id]
    return (bands[column]["low"] + bands[column]["high"]) / 2


def fabricated(task_id, keep_model=True):
    """The run's files made by hand: perf_metrics.csv typed to fall steadily onto the middle of the
    reference band, every PNG replaced by generated noise of the same size; the reference's
    model.pt kept beside them (keep_model) or removed. Nothing in it comes from a training run."""
    def operation(results, assignment):
        import numpy as np
        from PIL import Image
        folder = results / assignment.run(task_id).folder
        header, rows = _read_csv(folder / "perf_metrics.csv")
        last = dict(zip(header, map(float, rows[-1])))
        n = len(rows)
        for e, row in enumerate(rows):
            slope = 1 + 0.5 * (n - 1 - e) / max(n - 1, 1)       # from 1.5 x the target down to it
            for i, name in enumerate(header):
                if name in ("train_loss", "test_loss"):
                    row[i] = f"{_band_middle(assignment, task_id, name) * slope:.4f}"
                elif name in LOSS_COLUMNS:      # bce and kld: the reference's last shares of its loss
                    loss = "train_loss" if name.startswith("train") else "test_loss"
                    share = last[name] / last[loss] if last[loss] else 0.0
                    row[i] = f"{_band_middle(assignment, task_id, loss) * slope * share:.4f}"
        _write_csv(folder / "perf_metrics.csv", header, rows)
        rng = np.random.default_rng(0)
        for path in sorted(folder.glob("*.png")):
            with Image.open(path) as image:
                size, mode = image.size, image.mode
            pixels = rng.integers(0, 256, (size[1], size[0], len(mode)) if len(mode) > 1 else (size[1], size[0]),
                                  dtype=np.uint8)
            Image.fromarray(pixels, mode).save(path)
        if not keep_model:
            (folder / "model.pt").unlink(missing_ok=True)
    return _named(f"fabricated({task_id}, keep_model={keep_model})", operation)


def short_run_renamed(task_id, n_epochs=5):
    """A real run of the reference for only n_epochs on mnist-test-split (trained once, cached),
    handed in under the task's folder name (ep=<the task's epochs>), its last images renamed to the
    last epoch the task asks for."""
    def operation(results, assignment):
        run = assignment.run(task_id)
        source = cached_short_run(assignment, run, n_epochs)
        target = results / run.folder
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        for path in _epoch_images(target).get(n_epochs - 1, []):
            path.rename(target / path.name.replace(f"_{n_epochs - 1}.png", f"_{run.n_epochs - 1}.png"))
    return _named(f"short_run_renamed({task_id}, {n_epochs})", operation)


def cached_short_run(assignment, run, n_epochs):
    """The results folder of the reference trained n_epochs on mnist-test-split, made once and cached
    (keyed by the reference's source and the command line)."""
    import hashlib
    import course_config
    argv = run.argv(n_epochs=n_epochs, dataset="mnist-test-split")
    digest = hashlib.sha256(assignment.reference_file.read_bytes() + " ".join(argv).encode()).hexdigest()[:16]
    cached = course_config.CACHE_DIR / "selfcheck" / f"{assignment.name}-{run.task}-short-{digest}"
    if not cached.is_dir():
        from ..selfcheck import train_once
        log = cached.parent / f"{cached.name}.log"      # not with_suffix: the name holds "A.2"
        print(f"selfcheck: training the reference {n_epochs} epochs for the {run.task} short run (once; cached "
              f"in {cached}; log in {log})", flush=True)
        train_once(_train_short, (assignment, argv, cached, log), cached, log,
                   f"the reference's {n_epochs}-epoch run")
    return cached


def _train_short(assignment, argv, cached, log):
    """Train the reference vae.py with argv on the course's MNIST copy; move its folder to cached."""
    import os
    import tempfile
    from pathlib import Path
    import course_config
    from autograder.authoring.reference import load_reference_module
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    module = load_reference_module(assignment)
    with tempfile.TemporaryDirectory(prefix="vaekit-short-run-") as scratch:
        folder = module.main(argv + ["--data_dir", str(course_config.SHARED_DATA_DIR),
                                     "--results_dir", str(Path(scratch) / "results"), "--device", "cpu"])
        partial = cached.parent / f"{cached.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(folder, partial)
        partial.replace(cached)                 # atomic: never a half-written cache
