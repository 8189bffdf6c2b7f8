"""The student's run of vae.py: every documented file, on the CPU, offline; the data loaders."""

import csv
import gzip
import hashlib
import subprocess
import sys

import pytest
import torch

from autograder.qa.fakedata import accept_fake_celeba, make_fake_celeba
from autograder.engine.judge import png_size


def run_vae(assignment, cwd, *args):
    return subprocess.run([sys.executable, str(assignment.reference_file), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, assignment):
    """The reference vae.py run for 2 epochs on the generated digits, AE and VAE, on the CPU."""
    folder = tmp_path_factory.mktemp("student-run")
    for kind in ("ae", "vae"):
        done = run_vae(assignment, folder, "--autoencoder_type", kind, "--dataset", "synthetic-digits",
                       "--n_epochs", "2", "--device", "cpu")
        assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_run_writes_every_documented_file(tiny_runs, assignment, reference_vae, kind, kit_data):
    name = reference_vae.results_dir_name(kind, 512, 0.001, 2, "synthetic-digits")
    assert name == f"AE-arch={kind}(512)-lr=0.001-ep=2-data=synthetic-digits"
    folder = tiny_runs / "results" / name
    with open(folder / "perf_metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:3] == ["epoch", "train_loss", "test_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for row in rows:
        assert abs(float(row["train_loss"]) - float(row["train_bce"]) - float(row["train_kld"])) < 1e-2
        assert (float(row["test_kld"]) == 0) == (kind == "ae")
    side = assignment.image_side["synthetic-digits"]
    for epoch in (0, 1):
        assert png_size(folder / f"reconstruction_{epoch}.png") == assignment.reconstruction.size(side)
        assert png_size(folder / f"sample_{epoch}.png") == assignment.samples.size(side)
    assert png_size(folder / "manifold_digits.png") == assignment.manifold.size(side)
    for figure in ("manifold.png", "loss_curves.png"):
        png_size(folder / figure)
    model = reference_vae.Autoencoder(kind)
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))


def test_the_test_loss_is_reproducible(tiny_runs, assignment, tmp_path):
    done = run_vae(assignment, tmp_path, "--autoencoder_type", "vae", "--dataset", "synthetic-digits",
                   "--n_epochs", "2", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    name = "AE-arch=vae(512)-lr=0.001-ep=2-data=synthetic-digits"

    def losses(root):
        with open(root / "results" / name / "perf_metrics.csv", newline="") as f:
            return [(r["train_loss"], r["test_loss"]) for r in csv.DictReader(f)]

    assert losses(tmp_path) == losses(tiny_runs)


def test_results_folders_match_course_config(assignment, reference_vae, kit_data):
    for run in assignment.runs:
        assert run.folder == reference_vae.results_dir_name(run.autoencoder_type, run.hidden_layer_size, run.lr,
                                                            run.n_epochs, run.dataset)


def test_missing_mnist_gives_one_sentence(assignment, tmp_path):
    done = run_vae(assignment, tmp_path, "--dataset", "mnist", "--data_dir", str(tmp_path / "nothing"),
                   "--n_epochs", "1")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MNIST's train split is not in ")
    assert "train-images-idx3-ubyte.gz" in last and str(tmp_path / "nothing" / "MNIST" / "raw") in last
    assert "--dataset mnist-test-split" in last and "--dataset synthetic-digits" in last   # the offline way on
    assert "Traceback" not in done.stderr


def test_missing_celeba_gives_one_sentence(reference_vae, tmp_path, kit_data):
    with pytest.raises(kit_data.DataNotFoundError, match=r"CelebA is not in .*celeba: put img_align_celeba/"):
        kit_data.load_celeba(tmp_path, reference_vae.celeba_transform(), reference_vae.celeba_subset)


def test_celeba_path_on_a_fake_folder(reference_vae, assignment, tmp_path, monkeypatch, kit_data):
    make_fake_celeba(tmp_path / "data", n_images=100)
    monkeypatch.chdir(tmp_path)
    with accept_fake_celeba():
        folder = reference_vae.main(["--autoencoder_type", "vae", "--dataset", "celeba", "--n_epochs", "1",
                                     "--data_dir", "data", "--device", "cpu", "--n_dims_code", "8"])
    assert folder.name == "AE-arch=vae(512)-lr=0.001-ep=1-data=celeba"
    side = assignment.image_side["celeba"]
    assert png_size(folder / "sample_0.png") == assignment.samples.size(side)
    assert png_size(folder / "reconstruction_0.png") == assignment.reconstruction.size(side)
    with accept_fake_celeba():
        train_x, train_y, test_x, test_y = kit_data.load_celeba("data", reference_vae.celeba_transform(), reference_vae.celeba_subset, n_images=20, n_workers=0)
    assert train_x.shape == (20, 3, 64, 64) and train_x.dtype == torch.uint8 and len(test_x) == 2
    assert test_x.shape[1:] == (3, 64, 64) and set(train_y.tolist()) <= {0, 1}


def test_real_mnist_test_split_loads(reference_vae, shared_mnist, kit_data):
    raw = shared_mnist / "MNIST" / "raw"
    assert hashlib.md5((raw / "t10k-images-idx3-ubyte.gz").read_bytes()).hexdigest() == "9fb629c4189551a2d022fa330f9573f3"
    images, labels = kit_data.load_mnist_split(shared_mnist, "test", download=False)
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    train_x, train_y, test_x, test_y = kit_data.load_mnist_test_split(shared_mnist)
    assert len(train_x) == 8000 and len(test_x) == 2000
    assert set(torch.unique(train_x).tolist()) == {0, 255}
    again = kit_data.load_mnist_test_split(shared_mnist)
    assert torch.equal(again[1], train_y) and torch.equal(again[3], test_y)


def test_idx_reader_refuses_garbage(reference_vae, tmp_path, kit_data):
    good = tmp_path / "ok-idx1-ubyte.gz"
    with gzip.open(good, "wb") as f:
        f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    assert kit_data.read_idx(good).tolist() == [7, 8, 9]
    for name, data in (("bad", b"not an idx file"), ("short", bytes([0, 0, 8, 1, 0, 0, 0, 5, 1]))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError):
            kit_data.read_idx(tmp_path / name)


def test_generated_digits_are_deterministic_and_honestly_named(reference_vae, kit_data):
    images, labels = kit_data.make_synthetic_digits(200, seed=3)
    again, again_labels = kit_data.make_synthetic_digits(200, seed=3)
    other, _ = kit_data.make_synthetic_digits(200, seed=4)
    assert torch.equal(images, again) and torch.equal(labels, again_labels) and not torch.equal(images, other)
    assert images.shape == (200, 1, 28, 28) and set(torch.unique(images).tolist()) == {0, 255}
    assert sorted(set(labels.tolist())) == list(range(10))
    assert "synthetic-digits" in kit_data.DIGIT_DATASETS and "not MNIST" in kit_data.make_synthetic_digits.__doc__


def test_device_is_never_hard_coded(reference_vae, assignment, kit_data):
    source = assignment.reference_file.read_text()
    assert ".cuda()" not in source and 'device="cuda"' not in source
    assert kit_data.pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_batches_cover_every_example_once(reference_vae, kit_data):
    images = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1).repeat(1, 1, 2, 2)
    batches = kit_data.Batches(images, torch.arange(10), batch_size=4, shuffle=True, seed=1)
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10)) and len(batches) == 3
    x, y = next(iter(kit_data.Batches(images, torch.arange(10), batch_size=4)))
    assert x.shape == (4, 4) and x.dtype == torch.float32 and torch.allclose(x[:, 0], y.float() / 255)
