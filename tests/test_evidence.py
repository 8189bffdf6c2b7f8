"""The evidence probes recompute the result files from the submitted model.pt: the reference's own
files match, fabricated files and a relabelled state dict do not. Runs the probes in-process on
one run (the AE), without the sandbox: the sandboxed path is exercised by `grade`/selfcheck."""

import shutil
import types

import numpy as np
import pytest
import torch
from PIL import Image

import course_config
from autograder.graders.vae.evidence import probes
from autograder.graders.vae.hidden_tests import checks

ASSIGNMENT = course_config.get_assignment("vae")
RUN = ASSIGNMENT.run("A.2")
REFERENCE = ASSIGNMENT.solutions_dir / "results" / RUN.folder
HAS_DATA = (course_config.SHARED_DATA_DIR / "MNIST" / "raw").is_dir()
pytestmark = pytest.mark.skipif(not (REFERENCE / "model.pt").is_file(), reason="no committed reference run")


def job_for(tmp_path, folder, data=True):
    """An evidence_job module as the engine writes it, with results/ (and data/) beside it."""
    (tmp_path / "results").mkdir()
    shutil.copytree(folder, tmp_path / "results" / RUN.folder,
                    ignore=lambda d, names: [n for n in names if n.startswith(("reconstruction_", "sample_"))
                                             and not n.endswith(f"_{RUN.n_epochs - 1}.png")])
    if data and HAS_DATA:
        shutil.copytree(course_config.SHARED_DATA_DIR / "MNIST" / "raw", tmp_path / "data" / "MNIST" / "raw")
    context = {"runs": {"A.2": {"folder": RUN.folder, "autoencoder_type": RUN.autoencoder_type,
                                "dataset": RUN.dataset, "n_epochs": RUN.n_epochs, "n_dims_code": RUN.n_dims_code,
                                "hidden_layer_size": RUN.hidden_layer_size}},
               "seeds": {"train": ASSIGNMENT.seeds.train, "split": ASSIGNMENT.seeds.split},
               "image_side": dict(ASSIGNMENT.image_side)}
    return types.SimpleNamespace(CONTEXT=context, __file__=str(tmp_path / "evidence_job.py"))


def test_reference_files_match_its_model(tmp_path):
    evidence = probes.run_evidence(job_for(tmp_path, REFERENCE), "A.2")
    assert "error" not in evidence
    assert checks.images_match(evidence["sample"]) and checks.images_match(evidence["manifold_digits"])
    if HAS_DATA:
        final = float((REFERENCE / "perf_metrics.csv").read_text().splitlines()[-1].split(",")[2])
        split = evidence["test_loss"]["mnist-test-split"][0]
        assert abs(final - split) <= checks.LOSS_ATOL + checks.LOSS_RTOL * split
        assert checks.reconstruction_matches(evidence["reconstruction"]["mnist-test-split"], "ae")


def test_fabricated_images_do_not_match(tmp_path):
    job = job_for(tmp_path, REFERENCE)
    folder = tmp_path / "results" / RUN.folder
    for name in (f"sample_{RUN.n_epochs - 1}.png", "manifold_digits.png", f"reconstruction_{RUN.n_epochs - 1}.png"):
        with Image.open(folder / name) as image:
            size = image.size
        Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(folder / name)   # right size, black
    evidence = probes.run_evidence(job, "A.2")
    assert not checks.images_match(evidence["sample"])
    assert not checks.images_match(evidence["manifold_digits"])
    if HAS_DATA:
        assert not any(checks.reconstruction_matches(f, "ae") for f in evidence["reconstruction"].values())


def test_layers_mapped_by_shape_whatever_their_names(tmp_path):
    job = job_for(tmp_path, REFERENCE, data=False)
    path = tmp_path / "results" / RUN.folder / "model.pt"
    state = torch.load(path, weights_only=True)
    torch.save({f"layer{i}.{name.rsplit('.', 1)[1]}": v for i, (name, v) in enumerate(state.items())}, path)
    evidence = probes.run_evidence(job, "A.2")
    assert checks.images_match(evidence["sample"]) and evidence["data"] == "missing"


def test_model_of_another_architecture_is_refused(tmp_path):
    job = job_for(tmp_path, REFERENCE, data=False)
    path = tmp_path / "results" / RUN.folder / "model.pt"
    state = torch.load(path, weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(next(iter(state)).rsplit(".", 1)[0])}
    torch.save(state, path)
    evidence = probes.run_evidence(job, "A.2")
    assert "model.pt" in evidence["error"]
