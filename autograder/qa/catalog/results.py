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
