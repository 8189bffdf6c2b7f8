"""The math the vae hidden tests judge with: what the encoder, decoder and log-variance head
compute with the probe weights (and plausible mistakes, each with its hint), the closed-form KL of
Task B.1, BCE. Runs in the grader's process; it never imports a submission.
"""

import torch

from autograder.engine.judge import close, fail, fail_recognised
from autograder.graders.vae.probes import inputs


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def weights(seed, part, position, n_in, n_out):
    w, b = inputs.layer_weights(seed, part, position, n_in, n_out)
    return w.double(), b.double()


def encoder_candidates(seed, sizes, x):
    """What the encoder's code (AE) / mu (VAE) would be with the probe weights: the right one
    ("correct") and plausible mistakes, each with the hint it earns."""
    d, h, k = sizes["n_dims_data"], sizes["hidden_layer_size"], sizes["n_dims_code"]
    (w1, b1), (w2, b2) = weights(seed, 0, 0, d, h), weights(seed, 0, 1, h, k)
    pre = _t(x) @ w1.T + b1
    correct = torch.relu(pre) @ w2.T + b2
    return {
        "correct": (correct, ""),
        "no_relu": (pre @ w2.T + b2, "the encoder's hidden layer has no ReLU after it"),
        "tanh": (torch.tanh(pre) @ w2.T + b2, "the encoder's hidden activation should be a ReLU, not tanh"),
        "sigmoid": (torch.sigmoid(pre) @ w2.T + b2,
                    "the encoder's hidden activation should be a ReLU, not a sigmoid"),
        "relu_on_code": (torch.relu(correct), "the code comes straight out of a linear layer: "
                                              "no ReLU after the last encoder layer"),
        "sigmoid_on_code": (torch.sigmoid(correct), "the code comes straight out of a linear layer: "
                                                    "no sigmoid after the last encoder layer"),
        "tanh_on_code": (torch.tanh(correct), "the code comes straight out of a linear layer: "
                                              "no tanh after the last encoder layer"),
    }


def logvar_candidates(seed, sizes, x, position=2):
    """The log-variance head's output with the probe weights, and constrained versions of it."""
    d, h, k = sizes["n_dims_data"], sizes["hidden_layer_size"], sizes["n_dims_code"]
    (w1, b1), (w3, b3) = weights(seed, 0, 0, d, h), weights(seed, 0, position, h, k)
    logvar = torch.relu(_t(x) @ w1.T + b1) @ w3.T + b3
    hint = "logvar must stay unconstrained (any real number): no activation after its layer"
    return {"correct": (logvar, ""),
            "exp": (torch.exp(logvar), "you return exp(logvar) (a variance); encode must return log(sigma^2)"),
            "softplus": (torch.nn.functional.softplus(logvar), hint),
            "relu": (torch.relu(logvar), hint),
            "sigmoid": (torch.sigmoid(logvar), hint),
            "tanh": (torch.tanh(logvar), hint)}


def decoder_candidates(seed, sizes, z):
    d, h, k = sizes["n_dims_data"], sizes["hidden_layer_size"], sizes["n_dims_code"]
    (w1, b1), (w2, b2) = weights(seed, 1, 0, k, h), weights(seed, 1, 1, h, d)
    pre = _t(z) @ w1.T + b1
    logits = torch.relu(pre) @ w2.T + b2
    return {
        "correct": (torch.sigmoid(logits), ""),
        "no_sigmoid": (logits, "the decoder's outputs leave (0, 1): is the sigmoid at the end missing?"),
        "no_relu": (torch.sigmoid(pre @ w2.T + b2), "the decoder's hidden layer has no ReLU after it"),
        "tanh": (torch.sigmoid(torch.tanh(pre) @ w2.T + b2),
                 "the decoder's hidden activation should be a ReLU, not tanh"),
        "sigmoid_hidden": (torch.sigmoid(torch.sigmoid(pre) @ w2.T + b2),
                           "the decoder's hidden activation should be a ReLU, not a sigmoid"),
        "relu_before_sigmoid": (torch.sigmoid(torch.relu(logits)),
                                "there is a ReLU between the decoder's last layer and its sigmoid"),
        "tanh_output": (torch.tanh(logits), "the decoder should end with a sigmoid, not tanh"),
    }


def recognise(actual, candidates, tolerances):
    """The hint of the first mistake whose output matches actual, else None."""
    for name, (values, hint) in candidates.items():
        if name != "correct" and close(actual, values.numpy(), tolerances):
            return hint
    return None


def fail_diagnosed(actual, candidates, tolerances, default):
    """Fail with the hint of the mistake actual matches (a recognised mistake), else with default."""
    hint = recognise(actual, candidates, tolerances)
    if hint:
        fail_recognised(hint)
    fail(default)


def kl_closed_form(mu, logvar):
    """KL(N(mu, Sigma) || N(0, I)) summed over the batch, from the derivation
    1/2 [mu^T mu + tr Sigma - log|Sigma| - n], with the full covariance matrices Sigma = diag(exp(logvar))."""
    mu, logvar = _t(mu), _t(logvar)
    sigma = torch.diag_embed(torch.exp(logvar))                     # (B, n, n)
    n = mu.shape[1]
    quadratic = torch.einsum("bi,bi->b", mu, mu)
    trace = torch.diagonal(sigma, dim1=-2, dim2=-1).sum(-1)
    _, log_det = torch.linalg.slogdet(sigma)
    return float((0.5 * (quadratic + trace - log_det - n)).sum())


def kl_distributions(mu, logvar):
    """The same KL through torch.distributions, as an independent check of kl_closed_form."""
    from torch.distributions import MultivariateNormal, kl_divergence
    mu, logvar = _t(mu), _t(logvar)
    q = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(torch.exp(logvar)))
    p = MultivariateNormal(torch.zeros_like(mu), covariance_matrix=torch.eye(mu.shape[1], dtype=torch.float64))
    return float(kl_divergence(q, p).sum())


def kl_mistakes(mu, logvar):
    """Values a plausible wrong KL would have on (mu, logvar), each with its hint."""
    mu, logvar = _t(mu), _t(logvar)
    right = kl_closed_form(mu, logvar)
    b, n = mu.shape
    half_log = 0.5 * logvar

    def total(terms):
        return float(terms.sum())

    return [
        (2 * right, "your KL is exactly twice the closed form: where is the 1/2?"),
        (-right, "your KL has the wrong sign: a KL divergence is never negative, so check the sign "
                 "of the whole expression"),
        (total(0.5 * (mu ** 2 + torch.exp(half_log) - half_log - 1)),
         "you used the standard deviation where the formula wants the variance: "
         "tr(Sigma) = sum of exp(logvar), log|Sigma| = sum of logvar"),
        (total(0.5 * (mu ** 2 + torch.exp(half_log) - logvar - 1)),
         "tr(Sigma) is the sum of the variances exp(logvar), not of the standard deviations"),
        (total(0.5 * (mu ** 2 + torch.exp(logvar) - half_log - 1)),
         "log|Sigma| is the sum of logvar (log of variances), not of log standard deviations"),
        (right / b, "your KL is averaged over the batch; the contract wants it summed over the batch"),
        (right / (b * n), "your KL is averaged over the batch and the code dimensions; sum it instead"),
        (total(0.5 * (torch.exp(logvar) - logvar - 1)), "the mu^T mu term of the KL is missing"),
        (total(0.5 * (mu ** 2 + torch.exp(logvar) - logvar)), "the -n term (the -1 per dimension) is missing"),
        (total(0.5 * (mu ** 2 + torch.exp(logvar) + logvar - 1)), "the log|Sigma| term has the wrong sign"),
    ]


def binary_cross_entropy_sum(recon_x, x):
    return float(torch.nn.functional.binary_cross_entropy(_t(recon_x), _t(x), reduction="sum"))


