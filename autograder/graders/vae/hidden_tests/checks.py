"""Checks of a submission's result files, shared by the tasks that hand in a training run."""

import math

from autograder.engine.judge import fail, not_charged, png_size, read_metrics



def depends_on(earlier, why):
    """End the current test, which failed because of what the earlier test (named by its title)
    found. When that test recognised the mistake in values the grader computed itself, this one is
    not charged again (judge.not_charged); otherwise it fails. Either way the student reads which
    check to fix first."""
    not_charged(earlier, f"depends on \"{earlier}\": fix that first ({why})")


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
    check_test_loss_evidence(results, task_id, metrics)
    epochs = metrics["epoch"]
    if len(epochs) != run.n_epochs:
        fail(f"results/{folder.name}/perf_metrics.csv has {len(epochs)} epoch rows; the task asks for "
             f"{run.n_epochs} (one row per epoch)")
    if epochs != [float(e) for e in range(run.n_epochs)]:
        fail(f"results/{folder.name}/perf_metrics.csv: the epochs should run 0, 1, ..., {run.n_epochs - 1}")
    for column in ("train_loss", "test_loss"):
        if not all(math.isfinite(v) for v in metrics[column]):
            fail(f"results/{folder.name}/perf_metrics.csv: {column} holds NaN or infinite values")
    for column in ("train_loss", "test_loss"):
        values = metrics[column]
        if values[-1] >= values[0] or min(values[len(values) // 2:]) >= values[0]:
            fail(f"results/{folder.name}/perf_metrics.csv: the {column.replace('_', ' ')} does not go down "
                 "over the epochs, so this is not a trained run")
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
    check_image_evidence(results, task_id, "sample")
    check_reconstruction_evidence(results, task_id)


def check_final_losses(results, task_id):
    """The last epoch's train and test losses lie in the reference runs' band (and the test loss
    is the submitted model's)."""
    folder, metrics = metrics_of(results, task_id)
    check_test_loss_evidence(results, task_id, metrics)
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
            run = results.run(task_id)
            fail(f"your final {column.replace('_', ' ')} is above the range the reference runs reach: did it "
                 f"train all {run.n_epochs} epochs with Adam at lr {run.lr}, on binarised MNIST, with losses "
                 "per image (summed over pixels, divided by the number of images)?")
        if final < low:
            fail(f"your final {column.replace('_', ' ')} is below the range the reference runs reach: is it per "
                 "image (divided by the number of images, not of batches), and is the test loss measured "
                 "on the test split?")


# --- evidence: the result files recomputed from the submitted model.pt (evidence/probes.py) ----

PNG_ROUNDING = 2            # pixel values may differ by this much (float order, CPU vs GPU)
PNG_FRACTION_OFF = 1e-3     # ... and this fraction of pixels by more than 1
LOSS_RTOL, LOSS_ATOL = 1e-4, 0.01      # the CSV's 4 decimals, float sums in another order
VAE_LOSS_SIGMAS = 5         # a VAE's test loss draws z: within this many stds of the draws' mean
FABRICATED = ("does not match what your model.pt produces, so it earns nothing: hand in the files "
              "that the given train() wrote in the same run as model.pt")


def images_match(found):
    return found.get("status") == "compared" and (found["max_abs"] <= PNG_ROUNDING
                                                   or found["frac_off"] <= PNG_FRACTION_OFF)


def check_image_evidence(results, task_id, name):
    """The submitted image name (sample, manifold_digits) equals the one decoded from model.pt."""
    evidence = results.evidence(task_id)
    if evidence is None:
        return
    folder = f"results/{evidence['folder']}"
    if "error" in evidence:
        fail(evidence["error"])
    found = evidence[name]
    file = f"{name}_{results.run(task_id).n_epochs - 1}.png" if name == "sample" else f"{name}.png"
    if found["status"] != "compared":
        fail(f"{folder}/{file} is {found['status']} (the grader compares it with the figure decoded from model.pt)")
    if not images_match(found):
        fail(f"{folder}/{file} {FABRICATED} (pixels differ by up to {found['max_abs']} of 255)")


def reconstruction_matches(found, kind):
    if found.get("status") != "compared":
        return False
    if kind == "ae":
        return images_match(found)
    # the VAE decodes a random z: the top row is exact, the bottom row near decode(mu)
    return images_match(found["top"]) and found["bottom_mean_abs"] <= 2 * found["draws_bottom_mean_abs"] + 1


def check_reconstruction_evidence(results, task_id):
    evidence = results.evidence(task_id)
    if evidence is None:
        return
    if "error" in evidence:
        fail(evidence["error"])
    if evidence.get("data") != "found":
        results.note("The grader's copy of MNIST was not available, so your reconstructions and final test "
                     "losses were not recomputed from model.pt this time.")
        return
    file = f"results/{evidence['folder']}/reconstruction_{results.run(task_id).n_epochs - 1}.png"
    found = evidence["reconstruction"]
    if not any(reconstruction_matches(f, evidence["kind"]) for f in found.values()):
        status = {f.get("status") for f in found.values()} - {"compared"}
        if status:
            fail(f"{file} is {status.pop()} (the grader compares it with the test images reconstructed by model.pt)")
        fail(f"{file} {FABRICATED} (its top row should be the first 8 test images, the bottom row their "
             "reconstructions)")


def check_test_loss_evidence(results, task_id, metrics):
    """The CSV's final test loss is the submitted model's, on MNIST's test images (the full 10,000,
    or the 2,000 held out by --dataset mnist-test-split)."""
    evidence = results.evidence(task_id)
    if evidence is None:
        return None
    if "error" in evidence:
        fail(evidence["error"])
    if evidence.get("data") != "found":
        results.note("The grader's copy of MNIST was not available, so your reconstructions and final test "
                     "losses were not recomputed from model.pt this time.")
        return None
    final = metrics["test_loss"][-1]
    for test_set, draws in evidence["test_loss"].items():
        mean = sum(draws) / len(draws)
        std = math.sqrt(sum((d - mean) ** 2 for d in draws) / (len(draws) - 1)) if len(draws) > 1 else 0.0
        if abs(final - mean) <= LOSS_ATOL + LOSS_RTOL * abs(mean) + VAE_LOSS_SIGMAS * std:
            return test_set
    described = ", ".join(f"{sum(d) / len(d):.2f} on {name}" for name, d in evidence["test_loss"].items())
    fail(f"the final test loss in results/{evidence['folder']}/perf_metrics.csv ({final:.4f}) is not what "
         f"your model.pt gives on MNIST's test images ({described}), so the CSV earns nothing: hand in the "
         "perf_metrics.csv and model.pt of the same run")
