"""B.2: monte_carlo_loss, the L-sample estimator of the reconstruction term derived in B.1.

The probe runs the submission's monte_carlo_loss on a stand-in model (linear encoder, sigmoid
decoder, a correct loss_function) with noise eps that it fixes; this test computes what the
derivation says the three terms are on the same inputs (the stand-in's probabilities in float32,
as any float32 implementation gets them; the sums in float64), and never asks the submission or the
reference for them.
"""

import math

import torch

from autograder.engine.judge import fail, graded, kind_of, scalar_value
from autograder.graders.vae.oracle import binary_cross_entropy_sum, kl_closed_form
from autograder.graders.vae.probes import inputs
from autograder.graders.vae.probes.probes import MONTE_CARLO_CASES, monte_carlo_inputs


def estimator(seed, n_samples):
    """The derivation on the probe's inputs: (loss, bce, kld, [bce of each sample], bce of decoding mu)."""
    x, (w_mu, w_logvar), eps = monte_carlo_inputs(seed, n_samples)
    # float32 up to the probabilities, as the stand-in model computes them: a pixel whose sigmoid
    # rounds to exactly 0 or 1 in float32 costs BCE's clamped 100 there, and must here too
    mu, logvar = inputs.stand_in_encoding(x, w_mu, w_logvar)
    std = torch.exp(0.5 * logvar)
    per_sample = [binary_cross_entropy_sum(torch.sigmoid((mu + e * std) @ w_mu.T), x) for e in eps]
    bce = sum(per_sample) / n_samples
    kld = kl_closed_form(mu, logvar)
    return bce + kld, bce, kld, per_sample, binary_cross_entropy_sum(torch.sigmoid(mu @ w_mu.T), x)


def terms(student, case):
    """The (loss, bce, kld) the submission returned in one case, as floats."""
    returned = student.get("monte_carlo", case)
    if "returned" in returned:
        fail("monte_carlo_loss should return the tuple (loss, bce, kld), like loss_function")
    values = []
    for term in ("loss", "bce", "kld"):
        description = returned[term]
        if kind_of(description) != "tensor" or description["shape"] not in ([], [1]):
            fail(f"monte_carlo_loss: {term} should be a scalar tensor (the mean over the L samples of "
                 "loss_function's scalar)")
        values.append(scalar_value(description, term))
    return values


def near(a, b, tol):
    return math.isclose(a, b, rel_tol=tol.rtol, abs_tol=1e-4)


def bce_hint(got, n_samples, per_sample, bce_of_mu):
    """Why the bce of L samples differs from their mean, when a usual mistake explains it."""
    if n_samples > 1 and math.isclose(got, sum(per_sample), rel_tol=1e-4):
        return "bce is the sum over the L samples: the estimator averages them (the 1/L in B.1)"
    if n_samples > 1 and math.isclose(got, per_sample[0], rel_tol=1e-4):
        return "bce uses only the first noise sample: decode every z_l = mu + eps[l] * sigma and average"
    if math.isclose(got, bce_of_mu, rel_tol=1e-4):
        return "bce decodes mu itself: each z_l must be mu + eps[l] * sigma, with sigma = exp(logvar / 2)"
    return ("bce differs from (1/L) sum_l BCE(decode(mu + eps[l] * sigma), x) with the given eps "
            "(sigma = exp(logvar / 2)); use the eps argument when it is given")


@graded("B.2", 1, "monte_carlo_loss averages L reparameterised samples, as in the derivation")
def test_monte_carlo_estimator(student, tol, seed):
    for case, n_samples in MONTE_CARLO_CASES.items():
        right_loss, right_bce, right_kld, per_sample, bce_of_mu = estimator(seed, n_samples)
        loss, bce, kld = terms(student, case)
        where = f"with L = {n_samples} given noise samples: "
        if not near(bce, right_bce, tol):
            fail(where + bce_hint(bce, n_samples, per_sample, bce_of_mu))
        if not near(kld, right_kld, tol):
            if n_samples > 1 and math.isclose(kld, n_samples * right_kld, rel_tol=1e-4):
                fail(where + "kld is counted once per sample: the KL does not depend on z, so the mean "
                             "over the L samples keeps it once")
            fail(where + "kld differs from the closed-form KL of (mu, logvar)")
        if not near(loss, right_loss, tol):
            fail(where + "loss should be bce + kld, each averaged over the L samples")
    # Without eps the function draws its own noise: the KL does not depend on it.
    loss, bce, kld = terms(student, "L3_drawn")
    right_kld = estimator(seed, 3)[2]
    if not (math.isfinite(bce) and bce > 0 and near(kld, right_kld, tol) and near(loss, bce + kld, tol)):
        fail("with eps=None, monte_carlo_loss should draw eps of shape (L, B, K) from N(0, I) itself "
             "and return finite (loss, bce, kld) with loss = bce + kld")
