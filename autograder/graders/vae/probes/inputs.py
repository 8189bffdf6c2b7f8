"""Seeded inputs of the probes. The worker (in the sandbox) and the hidden tests (in the
grader) both build them from here, so the tests can compute what the right answer is
without ever receiving it from the submission. Nothing here is secret: only seeds and shapes.
Depends on torch alone.
"""

import torch

# The contract's default sizes (DESIGN §3): Autoencoder(kind) must build exactly these.
DEFAULT_SIZES = dict(n_dims_code=2, n_dims_data=784, hidden_layer_size=512)
# The sizes of the generality probes: nothing in a submission may depend on 784, 512 or 2.
OTHER_SIZES = (
    dict(n_dims_code=3, hidden_layer_size=64, n_dims_data=50),
    dict(n_dims_code=5, hidden_layer_size=32, n_dims_data=144),
)
BATCH = 8


def generator(seed, *salt):
    """A CPU torch.Generator seeded from seed and a few small integers."""
    value = seed
    for number in salt:
        value = (value * 1000003 + int(number)) % (2 ** 62)
    return torch.Generator().manual_seed(value)


def binary_batch(seed, n, n_dims, salt=0):
    """(n, n_dims) float32 of 0 and 1, about a third of the pixels on."""
    return (torch.rand(n, n_dims, generator=generator(seed, 1, salt, n_dims)) < 0.35).float()


def code_batch(seed, n, n_dims_code, salt=0):
    """(n, n_dims_code) float32 codes ~ N(0, 2^2): spread enough to reach both signs everywhere."""
    return 2 * torch.randn(n, n_dims_code, generator=generator(seed, 2, salt, n_dims_code))


def structure_inputs(seed, sizes):
    """(x (BATCH, D), z (64, K)) that the structure probes trace encode and decode with."""
    return binary_batch(seed, BATCH, sizes["n_dims_data"]), code_batch(seed, 64, sizes["n_dims_code"])


def copied_inputs(seed, sizes):
    """(x (BATCH, D), z (BATCH, K)) that the probes with copied weights run encode and decode on."""
    return binary_batch(seed, BATCH, sizes["n_dims_data"], salt=1), code_batch(seed, BATCH, sizes["n_dims_code"], salt=1)


def layer_weights(seed, part, position, in_features, out_features):
    """(weight (out, in), bias (out,)) for the layer at position (0, 1, ...) in call order of the
    encoder (part 0) or the decoder (part 1). Scaled so that about half of the units a ReLU
    follows are negative and a sigmoid neither saturates nor stays linear. Each unit's weights
    sum to zero and its bias is small, so that a layer fed by a ReLU (non-negative inputs) still
    gives outputs of both signs: a ReLU wrongly put after the code layer then changes the code."""
    g = generator(seed, 3, part, position, in_features, out_features)
    weight = torch.randn(out_features, in_features, generator=g) * (1.5 / in_features ** 0.5)
    weight -= weight.mean(dim=1, keepdim=True)
    bias = 0.1 * torch.randn(out_features, generator=g)
    return weight, bias


def gaussian_cases(seed):
    """(name, mu, logvar) pairs, each (B, K), for the KL probes. "prior" is mu = 0, logvar = 0."""
    g = generator(seed, 4)
    cases = [("random", torch.randn(6, 3, generator=g), 3 * torch.rand(6, 3, generator=g) - 2),
             ("wide", 3 * torch.randn(4, 5, generator=g), 4 * torch.rand(4, 5, generator=g) - 1),
             ("narrow", 0.5 * torch.randn(5, 2, generator=g), -4 + torch.rand(5, 2, generator=g)),
             ("one", torch.randn(1, 4, generator=g), torch.randn(1, 4, generator=g)),
             ("prior", torch.zeros(3, 4), torch.zeros(3, 4))]
    return cases


def bce_case(seed, n=6, n_dims=10):
    """(recon_x in (0.05, 0.95), x of 0 and 1), both (n, n_dims)."""
    g = generator(seed, 5)
    recon = 0.05 + 0.9 * torch.rand(n, n_dims, generator=g)
    return recon, binary_batch(seed, n, n_dims, salt=5)


def labelled_data(seed, n=41, n_dims=784, batch_size=16):
    """A small labelled data set for encode_dataset: x (n, n_dims) in [0, 1], labels (n,) long
    in 0..9 in no particular order, and the batch size to cut it with."""
    g = generator(seed, 6)
    return torch.rand(n, n_dims, generator=g), torch.randint(0, 10, (n,), generator=g), batch_size


def probe_model_weights(seed, n_dims, n_dims_code):
    """The weights of the small stand-in model encode_dataset is probed with: (W_mu, W_logvar).
    W_logvar is small, so that the stand-in's standard deviations stay near exp(-1/2)."""
    g = generator(seed, 7, n_dims, n_dims_code)
    return (torch.randn(n_dims, n_dims_code, generator=g),
            torch.randn(n_dims, n_dims_code, generator=g) / n_dims ** 0.5)


def stand_in_encoding(x, w_mu, w_logvar):
    """(mu, logvar) of the stand-in model on x: mu = x W_mu, logvar = x W_logvar - 1."""
    return x @ w_mu, x @ w_logvar - 1
