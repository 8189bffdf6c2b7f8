"""C: encode_dataset and the latent-space figures."""

import numpy as np

from autograder.engine.judge import array, close, fail, graded, kind_of, png_size
from autograder.graders.vae.hidden_tests.checks import check_image_evidence
from autograder.graders.vae.probes import inputs


def expected_codes(seed):
    """(the stand-in model's means, its standard deviations, the labels) on the probe's data."""
    x, labels, _ = inputs.labelled_data(seed)
    w_mu, w_logvar = inputs.probe_model_weights(seed, x.shape[1], 2)
    mu, logvar = inputs.stand_in_encoding(x.double(), w_mu.double(), w_logvar.double())
    return mu.numpy(), np.exp(0.5 * logvar.numpy()), labels.numpy()


def looks_sampled(codes, means, stds):
    """Whether codes look like draws mu + eps * std (eps ~ N(0, 1)) rather than the means."""
    if codes.shape != means.shape or not np.all(np.isfinite(codes)):
        return False
    return float(np.median(np.abs(codes - means) / stds)) < 3


def codes_and_labels(student, case):
    returned = student.get("encode_dataset", case)
    if "returned" in returned:
        fail("encode_dataset should return the pair (codes, labels)")
    return returned["codes"], returned["labels"]


@graded("C", 3, "encode_dataset returns the VAE's means, in the loader's order, with their labels")
def test_encode_dataset_means_in_order(student, tol, seed):
    means, stds, labels = expected_codes(seed)
    for case in ("vae_list", "vae_dataloader"):
        codes_description, labels_description = codes_and_labels(student, case)
        codes = array(codes_description, "codes")
        got_labels = array(labels_description, "labels")
        if codes.shape != means.shape:
            fail(f"codes has shape {codes.shape} for {len(means)} examples with a 2-D code: it should be (N, n_dims_code)")
        if not close(codes, means, tol):
            if looks_sampled(codes, means, stds):
                fail("the codes are not the means: for a VAE keep mu (the first output of encode), never a "
                     "sample z; the means make the plot reproducible")
            fail("the codes are not the model's encodings of the loader's examples in the loader's order")
        if got_labels.shape != labels.shape or not np.array_equal(got_labels, labels):
            if got_labels.shape == labels.shape and np.array_equal(np.sort(got_labels), np.sort(labels)):
                fail("the labels are not in the loader's order: labels[i] must belong to codes[i]")
            fail("labels should hold the loader's labels, one per example, in the loader's order")


@graded("C", 1, "encode_dataset works for the plain AE and returns float codes and long labels")
def test_encode_dataset_ae_and_types(student, tol, seed):
    means, _, _ = expected_codes(seed)
    codes_description, labels_description = codes_and_labels(student, "ae_list")
    if kind_of(codes_description) != "tensor" or kind_of(labels_description) != "tensor":
        fail("encode_dataset should return two torch tensors")
    if not close(array(codes_description, "codes"), means, tol):
        fail("for the plain autoencoder the codes should be encode(x) itself")
    for case in ("vae_list", "ae_list"):
        codes_description, labels_description = codes_and_labels(student, case)
        if codes_description["dtype"] not in ("float32", "float64"):
            fail(f"codes should be a float tensor, not {codes_description['dtype']}")
        if labels_description["dtype"] != "int64":
            fail(f"labels should be a long (int64) tensor, not {labels_description['dtype']}")


def check_manifold_files(results, task_id):
    folder = results.folder(task_id)
    run = results.run(task_id)
    side = results.assignment.image_side[run.dataset]
    expected = results.assignment.manifold.size(side)
    try:
        size = png_size(folder / "manifold_digits.png")
        png_size(folder / "manifold.png")
    except ValueError as error:
        fail(f"results/{folder.name}/: {error} (the given code writes it when n_dims_code == 2)")
    if size != expected:
        fail(f"results/{folder.name}/manifold_digits.png is {size[0]}x{size[1]} pixels; the 20x20 grid of "
             f"decoded codes is {expected[0]}x{expected[1]}")
    check_image_evidence(results, task_id, "manifold_digits")


@graded("C", 2, "AE latent-space figures: manifold_digits.png and manifold.png")
def test_ae_manifold_files(results):
    check_manifold_files(results, "A.2")


@graded("C", 2, "VAE latent-space figures: manifold_digits.png and manifold.png")
def test_vae_manifold_files(results):
    check_manifold_files(results, "B.2")
