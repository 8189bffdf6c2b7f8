"""A.1: the autoencoder's layers, activations and generality."""

from autograder.engine.judge import array, close, fail, graded, kind_of, matches_reference, with_context
from autograder.graders.vae.oracle import decoder_candidates, encoder_candidates, fail_diagnosed, recognise
from autograder.graders.vae.probes import inputs
from autograder.graders.vae.hidden_tests.checks import depends_on

ENCODER_LAYERS, DECODER_LAYERS = "Encoder layers: shapes and order", "Decoder layers: shapes and order"
ENCODE_VALUES = "encode gives the right code with known weights"
DECODE_VALUES = "decode gives the right images with known weights"
AE_OTHER_SIZES = "Other sizes work: nothing hard-coded"


def layer_hint(part, got, expected):
    if not got:
        return (f"{part} called no nn.Linear layer registered on the model: create the layers in __init__ "
                "as attributes (or nn.Sequential / nn.ModuleList) and call them in " + part)
    if len(got) != len(expected):
        return f"{part} called {len(got)} nn.Linear layer(s); this part of the network has {len(expected)}"
    return (f"{part} called nn.Linear layers of shapes (in, out) {[tuple(s) for s in got]}: check each size "
            "against n_dims_data, hidden_layer_size and n_dims_code, and the order of the layers")


COPIED_OUTPUT = {"encode": ("encode", 0, "output"), "decode": ("decode",)}


def copied_candidates(part, seed):
    """What part computes with the probe weights: the right output and plausible mistakes."""
    x, z = inputs.copied_inputs(seed, inputs.DEFAULT_SIZES)
    if part == "encode":
        return encoder_candidates(seed, inputs.DEFAULT_SIZES, x)
    return decoder_candidates(seed, inputs.DEFAULT_SIZES, z)


def check_layers(student, reference, tol, seed, part):
    """The nn.Linear layers part ("encode" or "decode") calls are the reference's, in order, and
    the values back it: with the grader's weights copied into them, part computes the reference's
    output or a mistake the grader recognises (layer shapes alone are a claim, worth no point)."""
    expected = reference.get("ae_structure", part, "layers")
    got = student.get("ae_structure", part, "layers")
    if got != expected:
        fail(layer_hint(part, got, expected))
    described = student.get("ae_copied", *COPIED_OUTPUT[part])
    if kind_of(described) in ("tuple", "list") and described.get("items"):
        described = described["items"][0]      # a tuple where a tensor belongs: the return-types check says so
    output = array(described, f"{part}'s output")
    if close(output, array(reference.get("ae_copied", *COPIED_OUTPUT[part])), tol):
        return
    if recognise(output, copied_candidates(part, seed), tol) is None:
        fail(f"{part} calls layers of the right shapes, but with the grader's weights copied into them its "
             "output matches no network built from those layers: see the check of its values")


@graded("A.1", 4, ENCODER_LAYERS)
def test_ae_encoder_layers(student, reference, tol, seed):
    check_layers(student, reference, tol, seed, "encode")


@graded("A.1", 4, DECODER_LAYERS)
def test_ae_decoder_layers(student, reference, tol, seed):
    check_layers(student, reference, tol, seed, "decode")


def check_values(student, reference, tol, seed, part, layers_title, shape_hint, default):
    """With the grader's weights copied into its layers, part ("encode" or "decode") computes the
    reference's output; else the hint of the mistake it matches, or default(output)."""
    expected = array(reference.get("ae_copied", *COPIED_OUTPUT[part]))
    got = array(student.get("ae_copied", *COPIED_OUTPUT[part]), f"{part}'s output")
    if close(got, expected, tol):
        return
    if got.shape != expected.shape:
        fail(f"{part} returned shape {got.shape} for a batch of {expected.shape[0]}; it should be {shape_hint}")
    if not matches_reference(student, reference, tol, "ae_structure", part, "layers"):
        depends_on(layers_title, "the grader copies its weights into your layers, which differ")
    fail_diagnosed(got, copied_candidates(part, seed), tol, default(got))


@graded("A.1", 4, ENCODE_VALUES)
def test_ae_encode_values(student, reference, tol, seed):
    check_values(student, reference, tol, seed, "encode", ENCODER_LAYERS, "(B, n_dims_code)",
                 lambda got: "with the grader's weights copied into your layers, encode gives other codes than "
                             "the reference: check linear -> ReLU -> linear, and that nothing else happens to x")


@graded("A.1", 4, DECODE_VALUES)
def test_ae_decode_values(student, reference, tol, seed):
    check_values(student, reference, tol, seed, "decode", DECODER_LAYERS, "(B, n_dims_data)",
                 lambda got: "the decoder's outputs leave (0, 1): is the sigmoid at the end missing?"
                             if got.min() < 0 or got.max() > 1 else
                             "with the grader's weights copied into your layers, decode gives other images than "
                             "the reference: check linear -> ReLU -> linear -> sigmoid")


@graded("A.1", 2, AE_OTHER_SIZES)
def test_ae_other_sizes(student, reference, tol):
    for index, sizes in enumerate(inputs.OTHER_SIZES):
        where = ", ".join(f"{k}={v}" for k, v in sizes.items())
        with with_context(f"With Autoencoder('ae', {where}): "):
            for part in ("encode", "decode"):
                expected = reference.get("ae_general", index, "structure", part, "layers")
                got = student.get("ae_general", index, "structure", part, "layers")
                if got != expected:
                    hard_coded = matches_reference(student, reference, tol, "ae_structure", part, "layers")
                    if not hard_coded:
                        depends_on(ENCODER_LAYERS if part == "encode" else DECODER_LAYERS,
                                   "the layers are already wrong at the default sizes")
                    fail(layer_hint(part, got, expected) + ("; they are right at the default sizes: is a size "
                                                            "hard-coded instead of taken from the arguments?"
                                                            if hard_coded else ""))
            pairs = [(("copied", "encode", 0, "output"), "encode"), (("copied", "decode"), "decode")]
            for path, name in pairs:
                expected = array(reference.get("ae_general", index, *path))
                got = array(student.get("ae_general", index, *path), f"{name}'s output")
                if not close(got, expected, tol):
                    if not matches_reference(student, reference, tol, "ae_copied", *path[1:]):
                        depends_on(ENCODE_VALUES if name == "encode" else DECODE_VALUES,
                                   f"{name} is already wrong at the default sizes")
                    fail(f"{name} gives other values than the reference at these sizes, although it matches "
                         "at the default sizes: is a number hard-coded?")


@graded("A.1", 2, "encode, decode and forward return what the contract says")
def test_ae_return_types(student, reference, tol):
    encoded = student.get("ae_structure", "encode", "output")
    if kind_of(encoded) in ("tuple", "list"):
        fail("`encode` returned a tuple for the plain autoencoder ('ae'): return the code z alone, "
             "a tensor of shape (B, n_dims_code)")
    if kind_of(encoded) != "tensor":
        fail("`encode` should return a torch.Tensor for 'ae'")
    if encoded["shape"] != reference.get("ae_structure", "encode", "output", "shape"):
        fail(f"`encode` returned shape {tuple(encoded['shape'])}; it should be (B, n_dims_code)")
    decoded = student.get("ae_structure", "decode", "output")
    if kind_of(decoded) != "tensor" or decoded["shape"] != reference.get("ae_structure", "decode", "output", "shape"):
        fail("`decode` should return one tensor of shape (B, n_dims_data)")
    if decoded["min"] is None or decoded["min"] < 0 or decoded["max"] > 1:
        if not matches_reference(student, reference, tol, "ae_copied", "decode"):
            depends_on(DECODE_VALUES, "the decoder's outputs leave (0, 1): is the sigmoid at the end missing?")
        fail("the decoder's outputs leave (0, 1): is the sigmoid at the end missing?")
    forward = student.get("ae_structure", "forward")
    items = forward.get("items", []) if isinstance(forward, dict) else []
    if kind_of(forward) != "tuple" or len(items) != 3 or kind_of(items[2]) != "None":
        fail("forward should return (x_hat, z, None) for 'ae'")
