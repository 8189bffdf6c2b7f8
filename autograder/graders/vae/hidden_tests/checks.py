"""Checks of a submission's result files, shared by the tasks that hand in a training run."""

import math

from autograder.engine.judge import fail, png_size, read_metrics

REQUIRED_COLUMNS = ("epoch", "train_loss", "test_loss")


def metrics_of(results, task_id):
    folder = results.folder(task_id)
    try:
        metrics = read_metrics(folder / "perf_metrics.csv")
    except ValueError as error:
        fail(f"results/{folder.name}/: {error}")
    missing = [c for c in REQUIRED_COLUMNS if c not in metrics]
    if missing:
        fail(f"results/{folder.name}/perf_metrics.csv lacks the column(s) {', '.join(missing)}")
    return folder, metrics


def check_run_files(results, task_id):
    """The run's folder holds perf_metrics.csv with every epoch and the last epoch's images."""
    run = results.run(task_id)
    folder, metrics = metrics_of(results, task_id)
    epochs = metrics["epoch"]
    if len(epochs) != run.n_epochs:
        fail(f"results/{folder.name}/perf_metrics.csv has {len(epochs)} epoch rows; the task asks for "
             f"{run.n_epochs} (one row per epoch)")
    if epochs != [float(e) for e in range(run.n_epochs)]:
        fail(f"results/{folder.name}/perf_metrics.csv: the epochs should run 0, 1, ..., {run.n_epochs - 1}")
    for column in ("train_loss", "test_loss"):
        if not all(math.isfinite(v) for v in metrics[column]):
            fail(f"results/{folder.name}/perf_metrics.csv: {column} holds NaN or infinite values")
    side = results.assignment.image_side[run.dataset]
    last = run.n_epochs - 1
    for name, grid in (("reconstruction", results.assignment.reconstruction),
                       ("sample", results.assignment.samples)):
        try:
            size = png_size(folder / f"{name}_{last}.png")
        except ValueError as error:
            fail(f"results/{folder.name}/: {error}")
        if size != grid.size(side):
            fail(f"results/{folder.name}/{name}_{last}.png is {size[0]}x{size[1]} pixels; the given code writes "
                 f"a {grid.nrows}x{grid.ncols} grid of {side}x{side} images ({grid.size(side)[0]}x{grid.size(side)[1]})")


def check_final_losses(results, task_id):
    """The last epoch's train and test losses lie in the reference runs' band."""
    folder, metrics = metrics_of(results, task_id)
    for column in ("train_loss", "test_loss"):
        values = metrics[column]
        if not values or not math.isfinite(values[-1]):
            fail(f"results/{folder.name}/perf_metrics.csv: the final {column} is missing or not a number")
        band = results.band(task_id, column)
        final = values[-1]
        if band is None:         # no reference band for this run: only sanity
            if final <= 0 or final >= values[0]:
                fail(f"the {column} did not go down during training")
            continue
        low, high = band
        if final > high:
            fail(f"your final {column.replace('_', ' ')} is above the range the reference runs reach: did it "
                 "train the full number of epochs with Adam at lr 0.001, on binarised MNIST, with losses "
                 "per image (summed over pixels, divided by the number of images)?")
        if final < low:
            fail(f"your final {column.replace('_', ' ')} is below the range the reference runs reach: is it per "
                 "image (divided by the number of images, not of batches), and is the test loss measured "
                 "on the test split?")
