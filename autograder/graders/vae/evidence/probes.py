"""Evidence probes: recompute, from each run's submitted model.pt, what its result files show.

Run in the sandboxed worker like the code probes, but the module they get is not the student's
code: it is the grader's `evidence_job.py`, whose CONTEXT names the runs, the seeds and where the
submitted results/ and the course's data are mounted (read-only, beside it). The weights are
loaded with torch.load(weights_only=True) into the kit's own architecture (a copy of the
reference Autoencoder's layers, below), mapped by shape and order, so any layer names work.
Each probe returns plain numbers; the hidden tests judge them (checks.py).
"""

import gzip
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

DATA_FILES = ("MNIST/raw",)      # what the engine mounts of the course's data folder, under data/
N_TRAIN_SPLIT = 8000             # kit_data.load_mnist_test_split's cut of the 10,000 test images
N_SHOWN = 8                      # vae.py's train(): the first 8 test images are reconstructed
N_PRIOR = 64                     # vae.py's train(): 64 seeded draws from the prior
VAE_DRAWS = 4                    # draws of z per test image to measure the VAE's loss spread
MANIFOLD = (20, 20, 2)           # _set_latent_vectors' nrows, ncols, z_range


class EvidenceError(Exception):
    """A result that cannot be recomputed, with a sentence for the student."""


# --- the kit's architecture -------------------------------------------------------------------

def linear_layers(state):
    """[(weight, bias)] in the state dict's order: each 2-D tensor with the 1-D tensor of its
    length right after it (its bias; zeros when there is none)."""
    items = [(name, value) for name, value in state.items()]
    layers, i = [], 0
    while i < len(items):
        name, value = items[i]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise EvidenceError(f"model.pt's entry {str(name)[:60]!r} is not a tensor of weights")
        if value.dim() == 2:
            bias = torch.zeros(value.shape[0])
            if i + 1 < len(items) and isinstance(items[i + 1][1], torch.Tensor) and items[i + 1][1].dim() == 1 \
                    and items[i + 1][1].shape[0] == value.shape[0]:
                bias = items[i + 1][1]
                i += 1
            layers.append((value.float(), bias.float()))
        elif value.dim() != 1:
            raise EvidenceError(f"model.pt's entry {str(name)[:60]!r} has shape {tuple(value.shape)}, which no "
                                "layer of the given Autoencoder has")
        i += 1
    return layers


def kit_models(state, kind, n_data, n_hidden, n_code):
    """The kit's layers filled from a student's state dict, by shape: one candidate per way the
    code layers can be read (a VAE's mu and logvar layers have the same shape; state-dict order first)."""
    by_shape = {}
    for weight, bias in linear_layers(state):
        by_shape.setdefault(tuple(weight.shape), []).append((weight, bias))
    wanted = {"enc_hidden": (n_hidden, n_data), "dec_hidden": (n_hidden, n_code), "dec_output": (n_data, n_hidden)}
    n_heads = 2 if kind == "vae" else 1
    expected = len(wanted) + n_heads
    found = sum(len(v) for v in by_shape.values())
    model = {}
    for part, shape in wanted.items():
        if len(by_shape.get(shape, [])) != 1:
            raise EvidenceError(f"model.pt does not hold the given {kind.upper()}'s layers (no single "
                                f"{shape[1]} -> {shape[0]} linear layer): save model.state_dict() of the "
                                "Autoencoder, as the given train() does")
        model[part] = by_shape[shape][0]
    heads = by_shape.get((n_code, n_hidden), [])
    if len(heads) != n_heads or found != expected:
        raise EvidenceError(f"model.pt holds {found} linear layers where the given {kind.upper()} has "
                            f"{expected}: it is not the model this run's folder name describes")
    if kind == "ae":
        return [{**model, "enc_code": heads[0]}]
    return [{**model, "enc_code": heads[0], "enc_logvar": heads[1]},
            {**model, "enc_code": heads[1], "enc_logvar": heads[0]}]


def linear(x, layer):
    return F.linear(x, *layer)


def encode(model, x):
    hidden = F.relu(linear(x, model["enc_hidden"]))
    return linear(hidden, model["enc_code"]), (linear(hidden, model["enc_logvar"]) if "enc_logvar" in model else None)


def decode(model, z):
    return torch.sigmoid(linear(F.relu(linear(z, model["dec_hidden"])), model["dec_output"]))


def per_image_losses(model, x, eps=None, batch=1000):
    """The loss of each image (BCE summed over pixels, plus the KL for a VAE), as train() measures it;
    eps: the standard normal draws of z for a VAE (N, K)."""
    losses = []
    for start in range(0, len(x), batch):
        xb = x[start:start + batch]
        mu, logvar = encode(model, xb)
        z = mu if logvar is None else mu + eps[start:start + batch] * torch.exp(0.5 * logvar)
        bce = F.binary_cross_entropy(decode(model, z), xb, reduction="none").sum(1)
        kld = 0 if logvar is None else 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
        losses.append(bce + kld)
    return torch.cat(losses).double()


# --- files ------------------------------------------------------------------------------------

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    n_dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * n_dims:]), dtype=torch.uint8).reshape(shape)


def mnist_test(data_dir):
    """MNIST's 10,000 official test images, binarised, as floats (N, 784) of 0 and 1; None if absent."""
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        path = os.path.join(data_dir, "MNIST", "raw", name)
        if os.path.isfile(path):
            images = read_idx(path)
            return (images.reshape(len(images), -1).float() / 255 > 0.5).float()
    return None


def grid_pixels(images, side, ncols):
    """The uint8 (H, W, 3) pixels save_image writes for images (N, side*side) in [0, 1]."""
    grid = make_grid(images.reshape(-1, 1, side, side), nrow=ncols)
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def submitted_pixels(path, shape):
    """The submitted PNG's (H, W, 3) pixels, or a word saying why not."""
    if not os.path.isfile(path):
        return "missing"
    try:
        with Image.open(path) as image:
            if (image.height, image.width) != shape[:2]:
                return "size"
            return np.asarray(image.convert("RGB"))
    except Exception:                 # any decoding error: the file is not a readable PNG
        return "unreadable"


def compare(submitted, expected):
    diff = np.abs(submitted.astype(np.int16) - expected.astype(np.int16))
    return {"status": "compared", "max_abs": int(diff.max()), "mean_abs": float(diff.mean()),
            "frac_off": float((diff > 1).mean())}


def image_evidence(path, expected):
    pixels = submitted_pixels(path, expected.shape)
    return {"status": pixels} if isinstance(pixels, str) else compare(pixels, expected)


# --- one run ----------------------------------------------------------------------------------

def run_evidence(job, task):
    context = job.CONTEXT
    base = os.path.dirname(os.path.abspath(job.__file__))
    run = context["runs"][task]
    folder = os.path.join(base, "results", run["folder"])
    kind, side, n_code = run["autoencoder_type"], context["image_side"][run["dataset"]], run["n_dims_code"]
    last = run["n_epochs"] - 1
    out = {"folder": run["folder"], "kind": kind}
    path = os.path.join(folder, "model.pt")
    if not os.path.isfile(path):
        return {**out, "error": f"results/{run['folder']}/model.pt is missing: the given train() saves it, and "
                                "the grader recomputes your result files from it"}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        return {**out, "error": f"results/{run['folder']}/model.pt could not be loaded as a state dict "
                                f"({type(error).__name__}): save model.state_dict(), as the given train() does"}
    if not isinstance(state, dict):
        return {**out, "error": f"results/{run['folder']}/model.pt holds a {type(state).__name__}, not a "
                                "state dict: save model.state_dict(), as the given train() does"}
    try:
        candidates = kit_models(state, kind, side * side, run["hidden_layer_size"], n_code)
    except EvidenceError as error:
        return {**out, "error": str(error)}

    with torch.no_grad():
        seed = context["seeds"]["train"]
        prior = torch.randn(N_PRIOR, n_code, generator=torch.Generator().manual_seed(seed))
        model = candidates[0]
        out["sample"] = image_evidence(os.path.join(folder, f"sample_{last}.png"),
                                       grid_pixels(decode(model, prior), side, 8))
        if n_code == 2:
            rows, cols, z_range = MANIFOLD
            z1 = torch.linspace(-z_range, z_range, cols)
            z2 = torch.linspace(z_range, -z_range, rows)
            grid_z2, grid_z1 = torch.meshgrid(z2, z1, indexing="ij")
            z = torch.stack([grid_z1.reshape(-1), grid_z2.reshape(-1)], dim=1)
            out["manifold_digits"] = image_evidence(os.path.join(folder, "manifold_digits.png"),
                                                    grid_pixels(decode(model, z), side, cols))
        x = mnist_test(os.path.join(base, "data"))
        if x is None:
            out["data"] = "missing"
            return out
        out["data"] = "found"
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(context["seeds"]["split"]))
        test_sets = {"mnist-test": torch.arange(len(x)), "mnist-test-split": order[N_TRAIN_SPLIT:]}
        best = None
        for index, candidate in enumerate(candidates):
            found = losses_and_reconstructions(candidate, kind, x, test_sets, folder, last, side, n_code)
            found["mapping"] = "state-dict order" if index == 0 else "mu and logvar layers swapped"
            if best is None or found["distance"] < best["distance"]:
                best = found
        out.update(best)
    return out


def losses_and_reconstructions(model, kind, x, test_sets, folder, last, side, n_code):
    """The mean test loss per image on each test set (one value per draw of z for a VAE) and the
    reconstruction file compared with the first 8 images of each test set."""
    draws = 1 if kind == "ae" else VAE_DRAWS
    per_draw = []
    for draw in range(draws):
        eps = torch.randn(len(x), n_code, generator=torch.Generator().manual_seed(draw))
        per_draw.append(per_image_losses(model, x, eps))
    test_loss = {name: [float(losses[index].mean()) for losses in per_draw] for name, index in test_sets.items()}
    path = os.path.join(folder, f"reconstruction_{last}.png")
    reconstructions = {}
    for name, index in test_sets.items():
        shown = x[index[:N_SHOWN]]
        mu, logvar = encode(model, shown)
        if logvar is None:
            reconstructions[name] = image_evidence(path, grid_pixels(torch.cat([shown, decode(model, mu)]), side, 8))
            continue
        # the VAE's reconstructions decode a random z: the top row (the images) must match exactly;
        # the bottom row is compared with decode(mu), next to how far random draws of z land from it
        mean_grid = grid_pixels(torch.cat([shown, decode(model, mu)]), side, 8)
        found = image_evidence(path, mean_grid)
        if found["status"] == "compared":
            submitted = submitted_pixels(path, mean_grid.shape)
            half = mean_grid.shape[0] // 2
            found["top"] = compare(submitted[:half], mean_grid[:half])
            found["bottom_mean_abs"] = compare(submitted[half:], mean_grid[half:])["mean_abs"]
            spread = []
            for draw in range(8):
                eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(100 + draw))
                drawn = grid_pixels(torch.cat([shown, decode(model, mu + eps * torch.exp(0.5 * logvar))]), side, 8)
                spread.append(compare(drawn[half:], mean_grid[half:])["mean_abs"])
            found["draws_bottom_mean_abs"] = max(spread)
        reconstructions[name] = found
    distance = min(abs(v["mean_abs"]) if v["status"] == "compared" else math.inf for v in reconstructions.values())
    return {"test_loss": test_loss, "reconstruction": reconstructions, "distance": distance}


def error_text(error):
    return f"{type(error).__name__}: {str(error)[:300]}"


PROBES = {task: (lambda job, seed, task=task: run_evidence(job, task)) for task in ("A.2", "B.2")}
