"""Probes: small functions that exercise a submission's vae.py and return plain data.

Each probe takes the imported module and the probe seed and returns a dict of JSON-able values
(numbers, strings, lists; arrays as encode_array dicts). A probe never judges: the hidden tests
do that outside this process, against their own math or the same probe run on the reference.
A part of a probe that raises is recorded as {"error": ...} so the other parts still count.
Runs inside the sandbox; depends on torch and inputs.py only.
"""

import base64
import hashlib
import traceback
import types

import torch
from torch import nn

try:                      # in the grader, as part of the autograder package
    from . import inputs
except ImportError:       # in the sandbox, where the worker folder is all there is
    import inputs

SUBMISSION_FILE = "vae.py"


# --- plain data -------------------------------------------------------------------------------

def encode_array(tensor):
    """A tensor as plain data: shape, dtype and float64 little-endian bytes in base64.

    Only an exact torch.Tensor is accepted (no subclass can fake its values)."""
    if type(tensor) is not torch.Tensor:
        raise TypeError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    values = torch.Tensor.detach(tensor).to("cpu", torch.float64).contiguous()
    return {"shape": list(values.shape), "dtype": str(tensor.dtype).replace("torch.", ""),
            "requires_grad": bool(tensor.requires_grad),
            "b64": base64.b64encode(values.numpy().tobytes()).decode("ascii")}


def describe(value, values=True):
    """What a function returned: a tensor's data (or, with values=False, only its shape, dtype
    and range), or the kind and length of anything else."""
    if type(value) is torch.Tensor:
        if values:
            return {"kind": "tensor", **encode_array(value)}
        data = torch.Tensor.detach(value).to("cpu", torch.float64)
        return {"kind": "tensor", "shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", ""),
                "min": float(data.min()) if data.numel() else None,
                "max": float(data.max()) if data.numel() else None}
    if isinstance(value, (tuple, list)):
        return {"kind": type(value).__name__, "items": [describe(v, values) for v in list(value)[:4]],
                "length": len(value)}
    if value is None:
        return {"kind": "None"}
    return {"kind": "other", "type": type(value).__name__[:60]}


def error_text(error):
    """One line about an exception: its type, message and the submission's line it came from."""
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 (a hostile __str__)
        message = "(unprintable message)"
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.endswith(SUBMISSION_FILE):
            where = f" ({SUBMISSION_FILE} line {frame.lineno}, in {frame.name})"
            break
    return f"{type(error).__name__}: {message[:300]}{where}"


def attempt(function, *args):
    """function(*args), or {"error": ...} when it raises."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 (student code may raise anything)
        return {"error": error_text(error)}


# --- tracing the nn.Linear layers -------------------------------------------------------------

def trace_linears(model, function, *args):
    """Call function(*args); return (the nn.Linear modules of model in first-call order, output)."""
    called, seen = [], set()

    def remember(module, _inputs, _output):
        if id(module) not in seen:
            seen.add(id(module))
            called.append(module)

    handles = [m.register_forward_hook(remember) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        output = function(*args)
    finally:
        for handle in handles:
            handle.remove()
    return called, output


def shapes(layers):
    return [[layer.in_features, layer.out_features] for layer in layers]


def load_weights(layers, seed, part, order=None):
    """Copy the probe weights into layers (in call order, or permuted by order)."""
    order = order or range(len(layers))
    with torch.no_grad():
        for position, index in enumerate(order):
            layer = layers[index]
            weight, bias = inputs.layer_weights(seed, part, position, layer.in_features, layer.out_features)
            layer.weight.copy_(weight)
            if layer.bias is None:
                raise ValueError("an nn.Linear layer was created with bias=False")
            layer.bias.copy_(bias)


def head_orders(layers):
    """Call orders to try: the layers in call order, and with equal-shaped layers after the
    first swapped (a VAE's mu and logvar heads may be called in either order)."""
    orders = [list(range(len(layers)))]
    same = [i for i in range(1, len(layers)) if shapes(layers[i:i + 1]) == shapes(layers[1:2])]
    if len(same) == 2:
        swapped = list(range(len(layers)))
        swapped[same[0]], swapped[same[1]] = same[1], same[0]
        orders.append(swapped)
    return orders


def build(module, kind, sizes):
    return module.Autoencoder(kind) if sizes is None else module.Autoencoder(kind, **sizes)


# --- A.1 and B.2: the architecture ------------------------------------------------------------

def _structure(module, kind, sizes, seed):
    sizes_used = sizes or inputs.DEFAULT_SIZES
    model = build(module, kind, sizes)
    x, z = inputs.structure_inputs(seed, sizes_used)
    result = {"n_linear": sum(isinstance(m, nn.Linear) for m in model.modules())}

    def encoder():
        layers, out = trace_linears(model, model.encode, x)
        return {"layers": shapes(layers), "output": describe(out, values=False)}

    def decoder():
        layers, out = trace_linears(model, model.decode, z)
        return {"layers": shapes(layers), "output": describe(out, values=False)}

    result["encode"] = attempt(encoder)
    result["decode"] = attempt(decoder)
    result["forward"] = attempt(lambda: describe(model(x), values=False))
    return result


def _copied(module, kind, sizes, seed):
    """Outputs with the probe weights copied into the layers, for each head order."""
    sizes_used = sizes or inputs.DEFAULT_SIZES
    model = build(module, kind, sizes)
    x, z = inputs.copied_inputs(seed, sizes_used)
    encode_layers, _ = trace_linears(model, model.encode, x)
    decode_layers, _ = trace_linears(model, model.decode, z)
    load_weights(decode_layers, seed, part=1)
    result = {"decode": attempt(lambda: describe(model.decode(z))), "encode": []}
    for order in head_orders(encode_layers):
        load_weights(encode_layers, seed, part=0, order=order)
        result["encode"].append({"order": order, "output": attempt(lambda: describe(model.encode(x)))})
        if kind == "vae":
            result["encode"][-1]["forward"] = attempt(_forward_elbo, model, x, seed)
    return result


def _forward_elbo(model, x, seed):
    """forward + loss_function on x with a fixed random state; records how sample() is used."""
    samples, decoded = [], []
    real_sample, real_decode = model.sample, model.decode

    def counting_sample(mu, logvar):
        z = real_sample(mu, logvar)
        samples.append(z)
        return z

    def recording_decode(z):
        decoded.append(z)
        return real_decode(z)

    model.sample, model.decode = counting_sample, recording_decode
    try:
        torch.manual_seed(seed)
        recon_x, mu, logvar = model(x)
    finally:
        del model.sample, model.decode
    decoded_sample = (len(samples) == 1 and len(decoded) == 1 and type(decoded[0]) is torch.Tensor
                      and decoded[0] is samples[0])
    terms = attempt(_loss_terms, model, recon_x, x, mu, logvar)      # an error here spoils the terms only
    if set(terms) == {"error"}:
        terms = {"loss": terms, "bce": terms, "kld": terms}
    return {**terms, "sample_calls": len(samples), "decode_calls": len(decoded), "decoded_the_sample": decoded_sample}


def _loss_terms(model, recon_x, x, mu, logvar):
    loss, bce, kld = model.loss_function(recon_x, x, mu, logvar)
    return {"loss": describe(loss), "bce": describe(bce), "kld": describe(kld)}


def probe_ae_structure(module, seed):
    return _structure(module, "ae", None, seed)


def probe_ae_copied(module, seed):
    return _copied(module, "ae", None, seed)


def _other_sizes(module, kind, seed):
    """The structure and copied-weights probes again, at each of inputs.OTHER_SIZES."""
    return [{"sizes": sizes, "structure": attempt(_structure, module, kind, sizes, seed),
             "copied": attempt(_copied, module, kind, sizes, seed)} for sizes in inputs.OTHER_SIZES]


def probe_ae_general(module, seed):
    return _other_sizes(module, "ae", seed)


def probe_vae_structure(module, seed):
    return _structure(module, "vae", None, seed)


def probe_vae_copied(module, seed):
    return _copied(module, "vae", None, seed)


def probe_vae_general(module, seed):
    return _other_sizes(module, "vae", seed)


# --- B.2: the loss ----------------------------------------------------------------------------

def _loss(module, kind, recon_x, x, mu, logvar):
    """loss_function called on a bare object holding only the constructor's attributes, so that
    the loss is judged on its own; falls back to a real instance if it needs more."""
    sizes = dict(n_dims_code=mu.shape[1], n_dims_data=x.shape[1], hidden_layer_size=16)
    bare = types.SimpleNamespace(autoencoder_type=kind, **sizes)
    try:
        out = module.Autoencoder.loss_function(bare, recon_x, x, mu, logvar)
    except (AttributeError, TypeError):
        out = build(module, kind, sizes).loss_function(recon_x, x, mu, logvar)
    if not isinstance(out, tuple) or len(out) != 3:
        return {"returned": describe(out)}
    return {"loss": describe(out[0]), "bce": describe(out[1]), "kld": describe(out[2])}


def probe_loss(module, seed):
    result = {}
    for name, mu, logvar in inputs.gaussian_cases(seed):
        recon_x, x = inputs.bce_case(seed, n=mu.shape[0])
        result[name] = attempt(_loss, module, "vae", recon_x, x, mu, logvar)
    name, mu, logvar = inputs.gaussian_cases(seed)[0]
    recon_x, x = inputs.bce_case(seed, n=mu.shape[0])
    result["ae"] = attempt(_loss, module, "ae", recon_x, x, mu, logvar)
    return result


# --- C: encode_dataset ------------------------------------------------------------------------

class StandInModel(nn.Module):
    """A tiny linear stand-in for an Autoencoder, so that encode_dataset is judged on its own:
    (mu, logvar) = inputs.stand_in_encoding(x, ...); sample() adds noise, decode() is a sigmoid."""

    def __init__(self, kind, w_mu, w_logvar):
        super().__init__()
        self.autoencoder_type = kind
        self.n_dims_data, self.n_dims_code = w_mu.shape
        self.hidden_layer_size = 1
        self.w_mu = nn.Parameter(w_mu.clone())
        self.w_logvar = nn.Parameter(w_logvar.clone())

    def encode(self, x):
        mu, logvar = inputs.stand_in_encoding(x, self.w_mu, self.w_logvar)
        return mu if self.autoencoder_type == "ae" else (mu, logvar)

    def sample(self, mu, logvar):
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z):
        return torch.sigmoid(z @ self.w_mu.T)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        if self.autoencoder_type == "ae":
            z = self.encode(x)
            return self.decode(z), z, None
        mu, logvar = self.encode(x)
        return self.decode(self.sample(mu, logvar)), mu, logvar


def _encode_dataset(module, kind, loader_kind, seed):
    x, labels, batch_size = inputs.labelled_data(seed)
    w_mu, w_logvar = inputs.probe_model_weights(seed, x.shape[1], 2)
    model = StandInModel(kind, w_mu, w_logvar)
    if loader_kind == "list":
        loader = [(x[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    else:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, labels), batch_size=batch_size)
    out = module.encode_dataset(model, loader)
    if not isinstance(out, tuple) or len(out) != 2:
        return {"returned": describe(out)}
    return {"codes": describe(out[0]), "labels": describe(out[1])}


def probe_encode_dataset(module, seed):
    return {f"{kind}_{loader}": attempt(_encode_dataset, module, kind, loader, seed)
            for kind in ("vae", "ae") for loader in ("list", "dataloader")}


# --- bonus: CelebA ----------------------------------------------------------------------------

def _subset(module, n_dataset, n_images, seed, random_state):
    torch.manual_seed(random_state)       # the global random state must not matter
    dataset = torch.utils.data.TensorDataset(torch.arange(n_dataset) * 3)
    kwargs = {} if n_images is None else {"n_images": n_images}
    if seed is not None:
        kwargs["seed"] = seed
    subset = module.celeba_subset(dataset, **kwargs)
    is_subset = isinstance(subset, torch.utils.data.Subset)
    result = {"type": type(subset).__name__[:60], "is_subset": is_subset, "length": len(subset)}
    if is_subset:
        indices = [int(i) for i in subset.indices]
        result.update(n_distinct=len(set(indices)), in_range=all(0 <= i < n_dataset for i in indices),
                      digest=hashlib.sha256(repr(indices).encode()).hexdigest())
        if len(indices) <= 1000:
            result["indices"] = indices
        probe_at = [0, len(indices) - 1] if indices else []
        result["items_match"] = all(int(subset[i][0]) == 3 * indices[i] for i in probe_at)
    return result


def probe_celeba_subset(module, seed):
    return {"n100_seed0": attempt(_subset, module, 1000, 100, 0, 11),
            "n100_seed0_again": attempt(_subset, module, 1000, 100, 0, 12),
            "n100_seed1": attempt(_subset, module, 1000, 100, 1, 11),
            "larger_than_data": attempt(_subset, module, 300, 5000, 0, 11),
            "defaults": attempt(_subset, module, 60000, None, None, 11)}


def _transform(module, image_size, seed):
    from PIL import Image
    g = inputs.generator(seed, 8)
    pixels = torch.randint(0, 256, (218, 178, 3), generator=g, dtype=torch.uint8)
    image = Image.fromarray(pixels.numpy(), mode="RGB")
    out = module.celeba_transform(image_size)(image)
    if type(out) is not torch.Tensor:
        return {"returned": describe(out)}
    return {"shape": list(out.shape), "dtype": str(out.dtype).replace("torch.", ""),
            "min": float(out.min()), "max": float(out.max())}


def probe_celeba_transform(module, seed):
    return {"size64": attempt(_transform, module, 64, seed), "size32": attempt(_transform, module, 32, seed)}


# --- B.2: the L-sample Monte Carlo estimator (monte_carlo_loss) ---------------------------------

MONTE_CARLO_CASES = {"L4": 4, "L1": 1}       # case -> L, the number of noise samples eps the probe fixes


class MonteCarloStandIn(StandInModel):
    """The stand-in model with a correct loss_function (summed BCE, closed-form KL), so that
    monte_carlo_loss is judged on its own, whatever the submission's encoder and KL do."""

    def loss_function(self, recon_x, x, mu, logvar):
        bce = nn.functional.binary_cross_entropy(recon_x, x.reshape(recon_x.shape), reduction="sum")
        kld = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - logvar - 1)
        return bce + kld, bce, kld


def monte_carlo_inputs(seed, n_samples, n=6, n_dims=20, n_dims_code=3):
    """(x (n, n_dims) of 0 and 1, the stand-in's (W_mu, W_logvar), eps (n_samples, n, n_dims_code))."""
    x = inputs.binary_batch(seed, n, n_dims, salt=9)
    eps = torch.randn(n_samples, n, n_dims_code, generator=inputs.generator(seed, 9, n_samples))
    return x, inputs.probe_model_weights(seed, n_dims, n_dims_code), eps


def _monte_carlo(module, n_samples, seed, with_eps):
    x, (w_mu, w_logvar), eps = monte_carlo_inputs(seed, n_samples)
    model = MonteCarloStandIn("vae", w_mu, w_logvar)
    torch.manual_seed(seed)
    out = module.monte_carlo_loss(model, x, n_samples, eps if with_eps else None)
    if not isinstance(out, tuple) or len(out) != 3:
        return {"returned": describe(out)}
    return {"loss": describe(out[0]), "bce": describe(out[1]), "kld": describe(out[2])}


def probe_monte_carlo(module, seed):
    result = {case: attempt(_monte_carlo, module, n_samples, seed, True)
              for case, n_samples in MONTE_CARLO_CASES.items()}
    result["L3_drawn"] = attempt(_monte_carlo, module, 3, seed, False)    # eps=None: its own noise
    return result


PROBES = {name[len("probe_"):]: function for name, function in sorted(globals().items())
          if name.startswith("probe_") and callable(function)}
