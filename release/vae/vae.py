"""Autoencoders and variational autoencoders on binarised MNIST digits.

This file is both your code and the program that trains it. Your work sits in the
places marked ``TODO``; everything else is given and already works. Run it like this:

    python vae.py --autoencoder_type ae  --n_epochs 100          # Task A.2
    python vae.py --autoencoder_type vae --n_epochs 100          # Task B.2
    python vae.py --autoencoder_type vae --dataset synthetic-digits --n_epochs 2   # quick try, offline

Shapes used below: B is the batch size, D = n_dims_data (784 for 28x28 images),
H = hidden_layer_size (512), K = n_dims_code (2).
"""

import argparse
import csv
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from matplotlib.figure import Figure
from torch import nn
from torchvision.utils import save_image
from tqdm.auto import tqdm

# Given data plumbing (loading, batching, devices), in kit_data.py next to this file.
from kit_data import (DIGIT_DATASETS, Batches, DataNotFoundError, guess_image_shape, load_celeba, load_digits,
                      pick_device, read_metrics)


# ---------------------------------------------------------------------------------------------
# The model (Tasks A.1 and B.2)
# ---------------------------------------------------------------------------------------------

class Autoencoder(nn.Module):
    """A one-hidden-layer autoencoder ("ae") or variational autoencoder ("vae").

    Encoder: x (B, D) -> hidden (B, H) -> code (B, K); the "vae" has a second output layer
    for the log-variance of q(z|x). Decoder: z (B, K) -> hidden (B, H) -> x_hat (B, D).
    """

    def __init__(self, autoencoder_type="ae", n_dims_code=2, n_dims_data=784, hidden_layer_size=512):
        super().__init__()
        if autoencoder_type not in ("ae", "vae"):
            raise ValueError(f"autoencoder_type must be 'ae' or 'vae', not {autoencoder_type!r}")
        self.autoencoder_type = autoencoder_type
        self.n_dims_code = n_dims_code
        self.n_dims_data = n_dims_data
        self.hidden_layer_size = hidden_layer_size

        # TODO (A.1): create the four nn.Linear layers of the autoencoder, using the sizes
        # given as arguments (never the numbers 784, 512 or 2):
        #   encoder: n_dims_data -> hidden_layer_size, then hidden_layer_size -> n_dims_code
        #   decoder: n_dims_code -> hidden_layer_size, then hidden_layer_size -> n_dims_data
        raise NotImplementedError("TODO (A.1) in vae.py is not done yet")

        if autoencoder_type == "vae":
            # TODO (B.2): the VAE's encoder has one more nn.Linear layer,
            # hidden_layer_size -> n_dims_code, whose output is log(sigma^2) of q(z|x).
            # The layer from A.1 that outputs the code now outputs the mean mu.
            raise NotImplementedError("TODO (B.2) in vae.py is not done yet")

    def encode(self, x):
        """Encode a batch x of shape (B, D).

        Returns z of shape (B, K) for "ae", and the pair (mu, logvar), each (B, K), for "vae".
        """
        if self.autoencoder_type == "ae":
            # TODO (A.1): a linear layer, a ReLU, then the linear layer to the code.
            # Return the code z as a tensor of shape (B, K) (not a tuple).
            raise NotImplementedError("TODO (A.1) in vae.py is not done yet")
        # TODO (B.2): the same hidden layer (linear, then ReLU) feeds two linear layers: one gives
        # mu, the other gives logvar = log(sigma^2). Leave logvar unconstrained (no activation):
        # it can be any real number. Return the tuple (mu, logvar), each of shape (B, K).
        raise NotImplementedError("TODO (B.2) in vae.py is not done yet")

    def sample(self, mu, logvar):
        """Draw z ~ N(mu, diag(exp(logvar))) with the reparameterisation trick.

        mu, logvar: (B, K). Returns z: (B, K). The randomness sits in eps, so gradients
        flow through mu and logvar.
        """
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        """Decode codes z of shape (B, K) into pixel probabilities x_hat of shape (B, D), in (0, 1)."""
        # TODO (A.1): a linear layer, a ReLU, then a linear layer and a sigmoid.
        raise NotImplementedError("TODO (A.1) in vae.py is not done yet")

    def forward(self, x):
        """Run the whole autoencoder on x of shape (B, D) or images (B, C, H, W).

        Returns (x_hat, z, None) for "ae" and (x_hat, mu, logvar) for "vae"; x_hat is (B, D).
        """
        x = x.reshape(x.shape[0], -1)
        if self.autoencoder_type == "ae":
            z = self.encode(x)
            return self.decode(z), z, None
        mu, logvar = self.encode(x)
        z = self.sample(mu, logvar)
        return self.decode(z), mu, logvar

    def loss_function(self, recon_x, x, mu, logvar):
        """The loss of a batch: returns (loss, bce, kld), three scalar tensors.

        recon_x: (B, D) pixel probabilities; x: the batch, (B, D) or (B, C, H, W), values in
        [0, 1]; mu, logvar: (B, K) for "vae" (ignored for "ae"). Every term is a SUM over the
        batch and over all dimensions; loss = bce + kld is the negative ELBO for the "vae".
        """
        bce = F.binary_cross_entropy(recon_x, x.reshape(recon_x.shape), reduction="sum")
        if self.autoencoder_type == "ae":
            kld = torch.zeros((), device=recon_x.device)
        else:
            # TODO (B.2): the KL divergence KL(N(mu, diag(sigma^2)) || N(0, I)) in closed form,
            # from your derivation in Task B.1 (tr of Sigma = sum of exp(logvar),
            # log|Sigma| = sum of logvar). kld must be one number: sum over the batch and the
            # K code dimensions.
            raise NotImplementedError("TODO (B.2) in vae.py is not done yet")
        return bce + kld, bce, kld


def monte_carlo_loss(model, x, n_mc_samples=1, eps=None):
    """loss_function's (loss, bce, kld) of batch x (B, D), bce averaged over L = n_mc_samples codes
    z_l = mu + eps[l] * sigma (Task B.1's estimator); eps (L, B, K) is drawn from N(0, I) if None."""
    x = x.reshape(x.shape[0], -1)
    if model.autoencoder_type == "ae" or (n_mc_samples == 1 and eps is None):
        recon_x, mu, logvar = model(x)           # L = 1: forward draws the one sample
        return model.loss_function(recon_x, x, mu, logvar)
    # TODO (B.2): encode x once; for each of the L noise samples decode its z_l and call
    # model.loss_function; return the mean over l of each of the three terms.
    raise NotImplementedError("TODO (B.2) in vae.py is not done yet")


# ---------------------------------------------------------------------------------------------
# The latent space (Task C)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_dataset(model, loader):
    """Encode every example that loader yields, in the loader's order.

    loader yields batches (x, y): x of shape (B, D) (flatten it if it comes as images) and
    labels y of shape (B,). Returns (codes, labels): codes a float tensor (N, K) on the CPU,
    holding z for an "ae" and the mean mu (never a random sample) for a "vae"; labels a long
    tensor (N,) on the CPU, row i of codes belonging to labels[i].
    """
    # TODO (C): put the model in evaluation mode, encode each batch (on the model's device),
    # keep the codes (for a "vae": mu only) and labels, and concatenate them.
    raise NotImplementedError("TODO (C) in vae.py is not done yet")


# --- Bonus: CelebA faces ---------------------------------------------------------------------

def celeba_subset(dataset, n_images=50000, seed=0):
    """A torch.utils.data.Subset of n_images distinct examples of dataset, chosen at random; the same
    seed gives the same subset; a dataset with fewer than n_images examples is returned whole."""
    # TODO (bonus): draw the indices with a torch.Generator seeded with seed (not the global
    # random state), without repeats, and wrap them in torch.utils.data.Subset.
    raise NotImplementedError("TODO (bonus) in vae.py is not done yet")


def celeba_transform(image_size=64):
    """The transform from a CelebA image (a 178 x 218 PIL image) to a float tensor (3, S, S)."""
    # TODO (bonus): crop the centre of the face to a square, resize it to image_size x
    # image_size, and turn it into a tensor (torchvision.transforms).
    raise NotImplementedError("TODO (bonus) in vae.py is not done yet")


# --- Figures of the latent space (Task C, given) -----------------------------------------------

def _set_latent_vectors(z_range=2, nrows=20, ncols=20):
    """A (nrows * ncols, 2) grid over [-z_range, z_range]^2 in row-major order: z1 grows along a row
    (left to right in manifold_digits.png), z2 falls from row to row (the top row has z2 = z_range)."""
    z1 = torch.linspace(-z_range, z_range, ncols)
    z2 = torch.linspace(z_range, -z_range, nrows)
    grid_z2, grid_z1 = torch.meshgrid(z2, z1, indexing="ij")
    return torch.stack([grid_z1.reshape(-1), grid_z2.reshape(-1)], dim=1)


@torch.no_grad()
def plot_manifold_learning_result(model, results_dir, loader, nrows=20, ncols=20, z_range=2):
    """Write manifold_digits.png (decoded 2-D grid) and manifold.png (codes of loader's data)."""
    model.eval()
    results_dir = Path(results_dir)
    device = next(model.parameters()).device
    image_shape = getattr(loader, "image_shape", None) or guess_image_shape(model.n_dims_data)

    z = _set_latent_vectors(z_range, nrows, ncols).to(device)
    images = model.decode(z).reshape(-1, *image_shape)
    save_image(images.cpu(), results_dir / "manifold_digits.png", nrow=ncols)

    codes, labels = encode_dataset(model, loader)
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=f"{model.autoencoder_type.upper()} codes of the test set")
    fig.savefig(results_dir / "manifold.png", dpi=100)


# ---------------------------------------------------------------------------------------------
# Training (given)
# ---------------------------------------------------------------------------------------------

def run_epoch(model, batches, optimizer=None, n_mc_samples=1):
    """One pass over batches; trains when an optimizer is given. Returns the mean (loss, bce, kld)
    per image; a VAE's bce averages n_mc_samples codes. Sums stay on the device until the end."""
    training = optimizer is not None
    model.train(training)
    totals = None
    with torch.set_grad_enabled(training):
        for x, _ in tqdm(batches, desc="train" if training else "test", leave=False):
            loss, bce, kld = monte_carlo_loss(model, x, n_mc_samples)
            if training:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            batch_totals = torch.stack([loss.detach(), bce.detach(), kld.detach()])
            totals = batch_totals if totals is None else totals + batch_totals
    return (totals / batches.n_images).tolist()


@torch.no_grad()
def save_reconstructions(model, images, image_shape, path):
    """Save images (8, D) in a top row over their reconstructions; image_shape is one image's (C, H, W)."""
    model.eval()
    recon, _, _ = model(images)
    save_image(torch.cat([images, recon]).reshape(-1, *image_shape).cpu(), path, nrow=8)


@torch.no_grad()
def save_samples(model, z, image_shape, path):
    """Decode the codes z (64, K), drawn from the prior N(0, I), into an 8 x 8 grid of images."""
    model.eval()
    save_image(model.decode(z).reshape(-1, *image_shape).cpu(), path, nrow=8)


METRICS_COLUMNS = ["epoch", "train_loss", "test_loss", "train_bce", "train_kld", "test_bce", "test_kld", "seconds"]


def plot_loss_curves(metrics_path, figure_path=None):
    """Plot the train and test loss per epoch from perf_metrics.csv; returns the Figure."""
    metrics = read_metrics(metrics_path)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(metrics["epoch"], metrics["train_loss"], marker=".", label="train")
    ax.plot(metrics["epoch"], metrics["test_loss"], marker=".", label="test")
    ax.set(xlabel="epoch", ylabel="loss per image (-ELBO for a VAE)", title=Path(metrics_path).parent.name)
    ax.legend()
    if figure_path is not None:
        fig.savefig(figure_path, dpi=100, bbox_inches="tight")
    return fig


def results_dir_name(autoencoder_type, hidden_layer_size, lr, n_epochs, dataset):
    """The folder a run writes into, e.g. AE-arch=vae(512)-lr=0.001-ep=100 (…-data=celeba for CelebA)."""
    name = f"AE-arch={autoencoder_type}({hidden_layer_size})-lr={lr}-ep={n_epochs}"
    return name if dataset == "mnist" else f"{name}-data={dataset}"


def load_dataset(name, data_dir):
    """Return train_images, train_labels, test_images, test_labels as uint8 / long tensors."""
    if name == "celeba":
        return load_celeba(data_dir, celeba_transform(), celeba_subset)
    return load_digits(name, data_dir)


def train(args):
    """Train one model as args says and write its results folder; returns the folder's Path."""
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    train_x, train_y, test_x, test_y = load_dataset(args.dataset, args.data_dir)
    train_batches = Batches(train_x.to(device), train_y.to(device), args.batch_size, shuffle=True, seed=args.seed)
    test_batches = Batches(test_x.to(device), test_y.to(device), args.batch_size)

    model = Autoencoder(args.autoencoder_type, args.n_dims_code, math.prod(train_x.shape[1:]),
                        args.hidden_layer_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    results_dir = Path(args.results_dir) / results_dir_name(
        args.autoencoder_type, args.hidden_layer_size, args.lr, args.n_epochs, args.dataset)
    results_dir.mkdir(parents=True, exist_ok=True)
    shown_images = next(iter(test_batches))[0][:8]
    prior_z = torch.randn(64, args.n_dims_code, generator=torch.Generator().manual_seed(args.seed)).to(device)

    metrics_path = results_dir / "perf_metrics.csv"
    with open(metrics_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(METRICS_COLUMNS)
        for epoch in tqdm(range(args.n_epochs), desc=f"{args.autoencoder_type} on {args.dataset}"):
            start = time.perf_counter()
            train_loss, train_bce, train_kld = run_epoch(model, train_batches, optimizer, args.n_mc_samples)
            test_loss, test_bce, test_kld = run_epoch(model, test_batches, None, args.n_mc_samples)
            save_reconstructions(model, shown_images, train_batches.image_shape,
                                 results_dir / f"reconstruction_{epoch}.png")
            save_samples(model, prior_z, train_batches.image_shape, results_dir / f"sample_{epoch}.png")
            seconds = time.perf_counter() - start
            writer.writerow([epoch, f"{train_loss:.4f}", f"{test_loss:.4f}", f"{train_bce:.4f}",
                             f"{train_kld:.4f}", f"{test_bce:.4f}", f"{test_kld:.4f}", f"{seconds:.3f}"])
            f.flush()

    torch.save(model.state_dict(), results_dir / "model.pt")
    plot_loss_curves(metrics_path, results_dir / "loss_curves.png")
    if args.n_dims_code == 2:
        plot_manifold_learning_result(model, results_dir, test_batches)
    print(f"Results in {results_dir}")
    return results_dir


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train an autoencoder (ae) or a VAE (vae).")
    parser.add_argument("--autoencoder_type", choices=["ae", "vae"], default="ae")
    parser.add_argument("--n_epochs", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--hidden_layer_size", type=int, default=512)
    parser.add_argument("--n_dims_code", type=int, default=2,
                        help="code size: 2 for MNIST (the manifold plots need 2); e.g. 32 for sharper faces")
    parser.add_argument("--n_mc_samples", type=int, default=1,
                        help="L, the number of codes z ~ q(z|x) per image in the VAE's loss (Task B.1)")
    parser.add_argument("--seed", type=int, default=8675309)
    parser.add_argument("--dataset", choices=[*DIGIT_DATASETS, "celeba"], default="mnist",
                        help="mnist (downloads when missing); mnist-test-split (MNIST's 10,000 test images, split "
                             "8,000/2,000); synthetic-digits (generated, offline, not MNIST); celeba (bonus)")
    parser.add_argument("--data_dir", default="./data")
    parser.add_argument("--results_dir", default="results")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    args = parser.parse_args(argv)
    if args.n_mc_samples < 1:
        parser.error("--n_mc_samples must be at least 1: it is the number of codes drawn per image")
    return args


def main(argv=None):
    """Command-line entry point; also callable from the notebook: main(["--autoencoder_type", "vae"])."""
    args = parse_args(argv)
    try:
        return train(args)
    except DataNotFoundError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
