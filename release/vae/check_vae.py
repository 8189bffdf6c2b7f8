"""Public checks of your vae.py: run `python check_vae.py` in this folder before you submit.

They only look at shapes and types on random inputs, so they run in seconds. Passing them does
not mean full marks: the autograder's hidden tests also check the values your code computes.
Each check prints PASS, FAIL (with a hint) or TODO (the code is not written yet).
`python check_vae.py --check NAME` runs one check (GitHub Classroom runs them one by one).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the vae.py next to this file

B = 16   # batch size of the random inputs


def check_ae_encode(vae):
    """Autoencoder("ae").encode returns one tensor of shape (B, 2)."""
    z = vae.Autoencoder("ae").encode(torch.rand(B, 784))
    assert isinstance(z, torch.Tensor), f"encode returned a {type(z).__name__}, not a tensor"
    assert z.shape == (B, 2), f"encode returned shape {tuple(z.shape)}, expected ({B}, 2)"


def check_ae_decode(vae):
    """Autoencoder("ae").decode returns (B, 784) values in [0, 1]."""
    x_hat = vae.Autoencoder("ae").decode(torch.randn(B, 2))
    assert isinstance(x_hat, torch.Tensor), f"decode returned a {type(x_hat).__name__}, not a tensor"
    assert x_hat.shape == (B, 784), f"decode returned shape {tuple(x_hat.shape)}, expected ({B}, 784)"
    assert x_hat.min() >= 0 and x_hat.max() <= 1, "decode returned values outside [0, 1]: a sigmoid is missing"


def check_ae_forward_and_loss(vae):
    """Autoencoder("ae"): forward returns 3 things, loss_function 3 scalars, and kld is 0."""
    model = vae.Autoencoder("ae")
    x = torch.rand(B, 784).round()
    outputs = model(x)
    assert isinstance(outputs, tuple) and len(outputs) == 3, "forward must return (recon_x, z, None)"
    recon_x, z, logvar = outputs
    losses = model.loss_function(recon_x, x, z, logvar)
    assert len(losses) == 3, "loss_function must return (loss, bce, kld)"
    for name, value in zip(("loss", "bce", "kld"), losses):
        assert isinstance(value, torch.Tensor) and value.dim() == 0, f"{name} is not a scalar tensor"
    assert losses[2].item() == 0, "for an 'ae', kld must be 0"


def check_vae_encode(vae):
    """Autoencoder("vae").encode returns (mu, logvar), each (B, 2)."""
    result = vae.Autoencoder("vae").encode(torch.rand(B, 784))
    assert isinstance(result, tuple) and len(result) == 2, "encode must return the tuple (mu, logvar)"
    for name, value in zip(("mu", "logvar"), result):
        assert isinstance(value, torch.Tensor), f"{name} is a {type(value).__name__}, not a tensor"
        assert value.shape == (B, 2), f"{name} has shape {tuple(value.shape)}, expected ({B}, 2)"


def check_vae_loss(vae):
    """Autoencoder("vae").loss_function returns 3 scalars; kld is >= 0, and 0 at the prior."""
    model = vae.Autoencoder("vae")
    x = torch.rand(B, 784).round()
    recon_x, mu, logvar = model(x)
    loss, bce, kld = model.loss_function(recon_x, x, mu, logvar)
    for name, value in (("loss", loss), ("bce", bce), ("kld", kld)):
        assert isinstance(value, torch.Tensor) and value.dim() == 0, f"{name} is not a scalar tensor"
    assert kld.item() >= 0, "kld is negative: a KL divergence never is"
    zeros = torch.zeros(B, 2)
    at_prior = model.loss_function(recon_x, x, zeros, zeros)[2].item()
    assert abs(at_prior) < 1e-6, f"kld is {at_prior} when mu = 0 and logvar = 0; it must be 0 there"


def check_encode_dataset(vae):
    """encode_dataset returns codes (N, 2) float and labels (N,) long."""
    loader = [(torch.rand(5, 784), torch.arange(5)), (torch.rand(3, 784), torch.arange(3))]
    codes, labels = vae.encode_dataset(vae.Autoencoder("vae"), loader)
    assert codes.shape == (8, 2), f"codes have shape {tuple(codes.shape)}, expected (8, 2)"
    assert codes.dtype == torch.float32, f"codes are {codes.dtype}, expected torch.float32"
    assert labels.shape == (8,), f"labels have shape {tuple(labels.shape)}, expected (8,)"
    assert labels.dtype == torch.long, f"labels are {labels.dtype}, expected torch.long (int64)"


def check_celeba_subset(vae):
    """celeba_subset returns a torch.utils.data.Subset of n_images examples."""
    dataset = torch.utils.data.TensorDataset(torch.arange(100))
    subset = vae.celeba_subset(dataset, n_images=10, seed=0)
    assert isinstance(subset, torch.utils.data.Subset), f"got a {type(subset).__name__}, not a Subset"
    assert len(subset) == 10, f"asked for 10 images, got {len(subset)}"
    assert len(vae.celeba_subset(dataset, n_images=500)) == 100, "a smaller data set must be returned whole"


CHECKS = [
    ("A.1", check_ae_encode, "encoder: Linear(n_dims_data, hidden) -> ReLU -> Linear(hidden, n_dims_code)"),
    ("A.1", check_ae_decode, "decoder: Linear -> ReLU -> Linear -> sigmoid, back to n_dims_data values"),
    ("A.1", check_ae_forward_and_loss, "forward and loss_function are given: check your layers' sizes"),
    ("B.2", check_vae_encode, "the 'vae' encoder returns two tensors from the same hidden layer"),
    ("B.2", check_vae_loss, "your B.1 formula with tr(Sigma) = sum of exp(logvar), log|Sigma| = sum of logvar"),
    ("C", check_encode_dataset, "concatenate the codes (mu for a 'vae') and the labels of every batch"),
    ("bonus", check_celeba_subset, "draw indices with torch.randperm and a seeded torch.Generator"),
]


def main(argv=None):
    import argparse
    names = [check.__name__.removeprefix("check_") for _, check, _ in CHECKS]
    parser = argparse.ArgumentParser(description="Public checks of vae.py (shapes and types only).")
    parser.add_argument("--check", choices=names, metavar="NAME",
                        help=f"run only this check, one of: {', '.join(names)}")
    chosen = parser.parse_args(argv).check
    checks = [c for c in CHECKS if chosen in (None, c[1].__name__.removeprefix("check_"))]
    try:
        import vae
    except Exception as error:   # a syntax error, a bad import, ...
        print(f"FAIL  vae.py cannot be imported: {type(error).__name__}: {error}")
        return 1
    n_passed = 0
    for task, check, hint in checks:
        description = check.__doc__
        try:
            check(vae)
        except NotImplementedError as error:   # the stub of a TODO region: say which one
            print(f"TODO  [{task}] {description}\n      TODO: not written yet ({error})")
        except Exception as error:
            message = str(error) if isinstance(error, AssertionError) else f"{type(error).__name__}: {error}"
            print(f"FAIL  [{task}] {description}\n      {message}\n      hint: {hint}")
        else:
            print(f"PASS  [{task}] {description}")
            n_passed += 1
    print(f"\n{n_passed} of {len(checks)} checks passed.")
    return 0 if n_passed == len(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
