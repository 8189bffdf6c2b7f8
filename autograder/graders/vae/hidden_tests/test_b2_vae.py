"""B.2: the VAE's encoder, its loss (the KL term from B.1) and its result files."""

import math

import pytest

from autograder.engine.judge import (array, close, fail, fail_recognised, graded, kind_of, matches_reference, scalar_value,
                                     with_context)
from autograder.graders.vae.oracle import (binary_cross_entropy_sum, encoder_candidates, kl_closed_form,
                                           kl_distributions, kl_mistakes, logvar_candidates, recognise)
from autograder.graders.vae.probes import inputs
from autograder.graders.vae.hidden_tests.checks import check_final_losses, check_run_files, depends_on
from autograder.graders.vae.hidden_tests.test_a1_autoencoder import AE_OTHER_SIZES, DECODE_VALUES

VAE_ENCODER_LAYERS = "VAE encoder layers, the log-variance layer included"
VAE_ENCODE_VALUES = "VAE encode returns (mu, logvar) with known weights"
KL_CLOSED_FORM = "KL term equals the closed form of the derivation"
BCE_AND_TOTAL = "bce is the summed binary cross-entropy and loss = bce + kld"
USES_THE_SAMPLE = "forward decodes one reparameterised sample z = mu + eps * std"
LOGVAR_UNCONSTRAINED = "logvar is unconstrained: negative values survive"
LOSS_SCALARS = "loss, bce and kld are scalar tensors"


def mu_logvar(description, what="encode's output for 'vae'"):
    """(mu, logvar) arrays of a described pair; fails with a hint when it is not a pair of tensors."""
    if kind_of(description) == "tensor":
        fail(f"{what} is one tensor: for 'vae', encode must return the pair (mu, logvar)")
    items = description.get("items", []) if isinstance(description, dict) else []
    if kind_of(description) not in ("tuple", "list") or len(items) != 2:
        fail(f"{what} should be the pair (mu, logvar)")
    return array(items[0], "mu"), array(items[1], "logvar")


def matching_order(student, reference, tol, probe, *prefix):
    """The index of the head order under which the student's (mu, logvar) equal the reference's
    (a VAE may call its mu and logvar layers in either order), or None."""
    expected = mu_logvar(reference.get(probe, *prefix, "encode", 0, "output"))
    orders = student.get(probe, *prefix, "encode")
    for index in range(len(orders) if isinstance(orders, list) else 0):
        if student.has(probe, *prefix, "encode", index, "output"):
            output = student.get(probe, *prefix, "encode", index, "output")
            if kind_of(output) in ("tuple", "list") and len(output.get("items", [])) == 2:
                mu, logvar = mu_logvar(output)
                if close(mu, expected[0], tol) and close(logvar, expected[1], tol):
                    return index
    return None


def heads_recognised(student, tol, seed):
    """Whether some head order of the student's (mu, logvar), with the grader's weights copied in,
    equals what the grader computes for the right network or a recognised mistake in it."""
    x, _ = inputs.copied_inputs(seed, inputs.DEFAULT_SIZES)
    mu_candidates = encoder_candidates(seed, inputs.DEFAULT_SIZES, x)
    logvar_options = logvar_candidates(seed, inputs.DEFAULT_SIZES, x)
    orders = student.get("vae_copied", "encode")
    for index in range(len(orders) if isinstance(orders, list) else 0):
        if not student.has("vae_copied", "encode", index, "output"):
            continue
        output = student.get("vae_copied", "encode", index, "output")
        if kind_of(output) not in ("tuple", "list") or len(output.get("items", [])) != 2:
            continue
        mu, logvar = mu_logvar(output)
        mu_known = any(close(mu, values.numpy(), tol) for values, _ in mu_candidates.values())
        if mu_known and any(close(logvar, values.numpy(), tol) for values, _ in logvar_options.values()):
            return True
    return False


@graded("B.2", 2, VAE_ENCODER_LAYERS)
def test_vae_encoder_layers(student, reference, tol, seed):
    expected = reference.get("vae_structure", "encode", "layers")
    got = student.get("vae_structure", "encode", "layers")
    if got == expected:
        if not heads_recognised(student, tol, seed):     # layer shapes alone are a claim, worth no point
            fail("encode calls layers of the right shapes, but with the grader's weights copied into them "
                 "(mu, logvar) match no network built from those layers: see the check of its values")
        return
    if len(got) == len(expected) - 1:
        fail("the VAE's encode calls one nn.Linear layer too few: is the log-variance layer "
             "(hidden_layer_size -> n_dims_code) missing or never called?")
    fail(f"the VAE's encode called nn.Linear layers of shapes (in, out) {[tuple(s) for s in got]}: "
         "it needs the hidden layer, then one layer for mu and one for logvar")


@graded("B.2", 3, VAE_ENCODE_VALUES)
def test_vae_encode_values(student, reference, tol, seed):
    if matching_order(student, reference, tol, "vae_copied") is not None:
        return
    if not matches_reference(student, reference, tol, "vae_structure", "encode", "layers"):
        depends_on(VAE_ENCODER_LAYERS, "the grader copies its weights into your layers, which differ")
    mu, logvar = mu_logvar(student.get("vae_copied", "encode", 0, "output"))
    x, _ = inputs.copied_inputs(seed, inputs.DEFAULT_SIZES)
    right_mu = encoder_candidates(seed, inputs.DEFAULT_SIZES, x)
    right_logvar = logvar_candidates(seed, inputs.DEFAULT_SIZES, x)
    for first, second in ((mu, logvar), (logvar, mu)):
        if close(first, right_logvar["correct"][0].numpy(), tol) and close(second, right_mu["correct"][0].numpy(), tol):
            fail_recognised("encode returns (logvar, mu): the contract's order is (mu, logvar)")
    if close(mu, right_mu["correct"][0].numpy(), tol) and logvar.min() >= 0:
        depends_on(LOGVAR_UNCONSTRAINED, "mu is right, but logvar is never negative")
    for candidates, got, name in ((right_mu, mu, "mu"), (right_logvar, logvar, "logvar")):
        if close(got, candidates["correct"][0].numpy(), tol):
            continue                # this one is right: the mistake is in the other
        for key, (values, hint) in candidates.items():
            if key != "correct" and close(got, values.numpy(), tol):
                fail_recognised(f"{name}: {hint}")
    fail("with the grader's weights copied into your layers, (mu, logvar) differ from the reference: "
         "both come from the same ReLU hidden layer, each through its own linear layer")


@graded("B.2", 1, LOGVAR_UNCONSTRAINED)
def test_vae_logvar_unconstrained(student, reference, tol, seed):
    order = matching_order(student, reference, tol, "vae_copied")
    _, logvar = mu_logvar(student.get("vae_copied", "encode", order or 0, "output"))
    _, expected = mu_logvar(reference.get("vae_copied", "encode", 0, "output"))
    assert expected.min() < 0, "the probe must produce negative log-variances"
    if logvar.min() >= 0:
        message = ("logvar is never negative: it must be unconstrained (log sigma^2 < 0 whenever sigma < 1), "
                   "so no ReLU, softplus or exp after its layer")
        x, _ = inputs.copied_inputs(seed, inputs.DEFAULT_SIZES)
        if recognise(logvar, logvar_candidates(seed, inputs.DEFAULT_SIZES, x), tol):
            fail_recognised(message)
        fail(message)
    if not close(logvar, expected, tol):
        depends_on(VAE_ENCODE_VALUES, "logvar takes negative values but differs from the reference")


@graded("B.2", 2, "VAE with other sizes: nothing hard-coded")
def test_vae_other_sizes(student, reference, tol):
    for index, sizes in enumerate(inputs.OTHER_SIZES):
        where = ", ".join(f"{k}={v}" for k, v in sizes.items())
        with with_context(f"With Autoencoder('vae', {where}): "):
            expected = reference.get("vae_general", index, "structure", "encode", "layers")
            if (student.has("vae_copied", "encode", 0, "output")      # the VAE's encode is written, and
                    and not matches_reference(student, reference, tol, "vae_general", index, "structure", "encode",
                                              "layers")
                    and not matches_reference(student, reference, tol, "ae_general", index, "structure", "encode",
                                              "layers")):       # the AE's encoder fails at these sizes too
                depends_on("A.1 " + AE_OTHER_SIZES, "the hidden layer that the AE and the VAE share does not "
                                                    "follow the sizes")
            if student.get("vae_general", index, "structure", "encode", "layers") != expected:
                if not matches_reference(student, reference, tol, "vae_structure", "encode", "layers"):
                    depends_on(VAE_ENCODER_LAYERS, "encode's layers are already wrong at the default sizes")
                fail("encode's layers do not follow the sizes given to __init__: is a size hard-coded?")
            if matching_order(student, reference, tol, "vae_general", index, "copied") is None:
                if matching_order(student, reference, tol, "vae_copied") is None:
                    depends_on(VAE_ENCODE_VALUES, "(mu, logvar) are already wrong at the default sizes")
                fail("(mu, logvar) differ from the reference at these sizes, although they match at the "
                     "default sizes: is a size hard-coded?")


def kl_cases(student, seed):
    """[(name, mu, logvar, the student's kld description)] for every Gaussian case."""
    cases = []
    for name, mu, logvar in inputs.gaussian_cases(seed):
        kld = student.get("loss", name, "kld")
        if kind_of(kld) != "tensor":
            depends_on(LOSS_SCALARS, "kld is no tensor")
        cases.append((name, mu, logvar, kld))
    return cases


def kl_is_wrong(student, tol, seed):
    """Whether the check of the KL's closed form fails (then the KL's properties fail with it)."""
    try:
        return any(not close([scalar_value(kld, "kld")], [kl_closed_form(mu, logvar)], tol)
                   for _, mu, logvar, kld in kl_cases(student, seed))
    except (pytest.fail.Exception, pytest.skip.Exception):     # kld is no scalar tensor (or raised)
        return True


def kl_scalar(description, name, student, tol, seed):
    """scalar_value of kld, or of a term holding it (loss), not charged again when the check of the
    KL's closed form already fails (a kld per example makes every term that holds it a vector)."""
    if kind_of(description) != "tensor":
        depends_on(LOSS_SCALARS, f"{name} is no tensor")
    try:
        return scalar_value(description, name)
    except pytest.fail.Exception as failure:
        if kl_is_wrong(student, tol, seed):
            depends_on(KL_CLOSED_FORM, str(failure.msg))
        raise


@graded("B.2", 4, KL_CLOSED_FORM)
def test_kl_closed_form(student, tol, seed):
    observed, expected = [], []
    for name, mu, logvar, kld in kl_cases(student, seed):
        right = kl_closed_form(mu, logvar)
        assert math.isclose(right, kl_distributions(mu, logvar), rel_tol=1e-9, abs_tol=1e-9), \
            "the grader's two KL formulas disagree"
        values = array(kld, "kld")
        if values.size != 1:
            if values.size == mu.shape[0] and math.isclose(float(values.sum()), right, rel_tol=tol.rtol, abs_tol=1e-4):
                fail_recognised("kld holds one value per example: sum it over the batch too, so that it is one number")
            fail(f"kld has shape {values.shape}: it should be one number, the sum over the batch and the code dimensions")
        observed.append(float(values.reshape(())))
        expected.append(right)
    if close(observed, expected, tol):
        return
    cases = inputs.gaussian_cases(seed)
    mistakes = [kl_mistakes(mu, logvar) for _, mu, logvar in cases]
    for index, (_, hint) in enumerate(mistakes[0]):
        candidate = [case[index][0] for case in mistakes]
        informative = [i for i, (name, _, _) in enumerate(cases) if name != "prior"]
        if close([observed[i] for i in informative], [candidate[i] for i in informative], tol):
            fail_recognised(hint)
    fail("kld differs from the closed form 1/2 [mu^T mu + tr(Sigma) - log|Sigma| - n], summed over the batch, "
         "with Sigma = diag(exp(logvar))")


@graded("B.2", 1, LOSS_SCALARS)
def test_loss_terms_are_scalars(student, tol, seed):
    for name, _, _ in inputs.gaussian_cases(seed):
        returned = student.get("loss", name)
        if "returned" in returned:
            fail("loss_function should return the tuple (loss, bce, kld)")
        for term in ("loss", "bce", "kld"):
            description = returned[term]
            if kind_of(description) != "tensor":
                fail(f"{term} should be a torch.Tensor (keep it a tensor so that it can be back-propagated)")
            if description["shape"] not in ([], [1]):
                if term != "bce" and kl_is_wrong(student, tol, seed):
                    depends_on(KL_CLOSED_FORM, f"{term} has shape {tuple(description['shape'])}")
                fail(f"{term} has shape {tuple(description['shape'])}: it should be a scalar, summed over "
                     "the batch and all dimensions")


@graded("B.2", 1, "KL properties: zero at the prior, never negative, zero for the plain AE")
def test_kl_properties(student, tol, seed):
    for name, _, _, kld in kl_cases(student, seed):
        value = kl_scalar(kld, "kld", student, tol, seed)
        if name == "prior" and abs(value) > 1e-5:
            if kl_is_wrong(student, tol, seed):
                depends_on(KL_CLOSED_FORM, "kld is not 0 when mu = 0 and logvar = 0")
            fail("kld is not 0 when mu = 0 and logvar = 0: q(z|x) is then the prior itself, so the KL must vanish")
        if value < -1e-6:
            if kl_is_wrong(student, tol, seed):
                depends_on(KL_CLOSED_FORM, "kld is negative for some inputs")
            fail("kld is negative for some inputs: a KL divergence is never negative")
    ae_kld = scalar_value(student.get("loss", "ae", "kld"), "the plain autoencoder's kld")
    if ae_kld != 0:
        fail("for the plain autoencoder ('ae') kld must be a zero tensor: the KL term belongs to the VAE only")


@graded("B.2", 1, BCE_AND_TOTAL)
def test_bce_and_total(student, tol, seed):
    name, mu, _ = inputs.gaussian_cases(seed)[0]
    recon_x, x = inputs.bce_case(seed, n=mu.shape[0])
    bce = kl_scalar(student.get("loss", name, "bce"), "bce", student, tol, seed)
    kld = kl_scalar(student.get("loss", name, "kld"), "kld", student, tol, seed)
    loss = kl_scalar(student.get("loss", name, "loss"), "loss", student, tol, seed)
    right = binary_cross_entropy_sum(recon_x, x)
    if not math.isclose(bce, right, rel_tol=tol.rtol, abs_tol=tol.atol):
        if math.isclose(bce * x.numel(), right, rel_tol=tol.rtol) or math.isclose(bce * x.shape[0], right, rel_tol=tol.rtol):
            fail("bce is averaged: the contract wants the binary cross-entropy summed over the batch and the pixels")
        fail("bce is not the binary cross-entropy of recon_x against x, summed over the batch and the pixels")
    if not math.isclose(loss, bce + kld, rel_tol=tol.rtol, abs_tol=tol.atol):
        fail("loss should be bce + kld (the negative ELBO)")


@graded("B.2", 1, "forward + loss_function give the reference's negative ELBO on a fixed seed")
def test_forward_elbo(student, reference, tol, seed):
    order = matching_order(student, reference, tol, "vae_copied")
    if order is None:
        depends_on(VAE_ENCODE_VALUES, "this check uses encode's (mu, logvar), which do not match the reference yet")
    expected = reference.get("vae_copied", "encode", 0, "forward")
    if (not all(student.has("vae_copied", "encode", order, "forward", term) for term in ("bce", "kld", "loss"))
            and not matches_reference(student, reference, tol, "ae_copied", "decode")):
        depends_on("A.1 " + DECODE_VALUES, "forward + loss_function fail on what your decode returns")
    got = student.get("vae_copied", "encode", order, "forward")
    for term in ("bce", "kld", "loss"):
        value = student.get("vae_copied", "encode", order, "forward", term)     # explains an error in it
        if not close(kl_scalar(value, term, student, tol, seed), scalar_value(expected[term], term), tol):
            message = (f"on a fixed random seed, the {term} of forward + loss_function differs from the "
                       "reference's")
            earlier = earlier_mistake(student, reference, tol, seed, term, got)
            if earlier:
                depends_on(earlier, message)
            fail(message + ", although decode, the KL term and bce pass their own checks: look at how forward "
                 "passes (mu, logvar) and the sample on to loss_function")


def earlier_mistake(student, reference, tol, seed, term, forward):
    """The title of the failed check that explains a wrong term of forward + loss_function, or None."""
    if term == "kld":
        return KL_CLOSED_FORM if kl_is_wrong(student, tol, seed) else None
    if not isinstance(forward, dict) or forward.get("decoded_the_sample") is not True:
        return USES_THE_SAMPLE
    if term == "bce" and not matches_reference(student, reference, tol, "ae_copied", "decode"):
        return "A.1 " + DECODE_VALUES
    name, mu, _ = inputs.gaussian_cases(seed)[0]
    recon_x, x = inputs.bce_case(seed, n=mu.shape[0])
    values = {t: scalar_value(student.get("loss", name, t), t) for t in ("bce", "kld", "loss")}
    if not (math.isclose(values["bce"], binary_cross_entropy_sum(recon_x, x), rel_tol=tol.rtol, abs_tol=tol.atol)
            and math.isclose(values["loss"], values["bce"] + values["kld"], rel_tol=tol.rtol, abs_tol=tol.atol)):
        return BCE_AND_TOTAL
    return None


@graded("B.2", 1, USES_THE_SAMPLE)
def test_forward_uses_the_sample(student, reference, tol):
    order = matching_order(student, reference, tol, "vae_copied")
    forward = ("vae_copied", "encode", order or 0, "forward")
    calls = student.get(*forward, "sample_calls")
    if calls != 1:
        fail(f"forward called self.sample {calls} time(s): it should draw z exactly once")
    if student.get(*forward, "decoded_the_sample") is not True:
        fail("forward does not decode the z that self.sample returned (is it decoding mu?)")


@graded("B.2", 1, "VAE result files: every epoch's losses, the last epoch's reconstructions and samples")
def test_vae_result_files(results):
    check_run_files(results, "B.2")


@graded("B.2", 1, "VAE final losses within the reference runs' range")
def test_vae_final_losses(results):
    check_final_losses(results, "B.2")
