"""Benchmarks (not tests): each prints ratios against a baseline measured in the same process.

    python -m autograder bench data  [--dataset auto] [--epochs 3] [--device auto]
        per-epoch time of the kit's data path (tensors resident on the device, batches cut by
        indexing) against the per-item DataLoader path of torchvision's MNIST (a PIL image per
        item, ToTensor, threshold, batch 128), same model, same training code, same data.
    python -m autograder bench grade [--repeat 3] [--batch 20] [--jobs 2]
        wall time to grade one ordinary submission (the reference) with the sandbox on, and a
        batch of copies of it.
    python -m autograder bench share [--repeat 1]
        the time to grade an honest submission alone, then in a batch beside the catalog's CPU hog
        (sixteen spinning processes, each in a session of its own), with each grading's worker in
        a control group of its own and without (KIT_NO_CPU_GROUPS=1).
"""

import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import course_config
import kit_data
from ..authoring.reference import choose_dataset, load_reference_module


class PerItemMNIST:
    """What torchvision.datasets.MNIST does for each item: a PIL image, then the transform."""

    def __init__(self, images, labels):
        import torchvision.transforms as T
        self.images = images[:, 0].numpy()            # (N, 28, 28) uint8
        self.labels = labels.tolist()
        self.transform = T.Compose([T.ToTensor(), T.Lambda(lambda x: (x > 0.5).float().reshape(-1))])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image
        image = Image.fromarray(self.images[index], mode="L")
        return self.transform(image), self.labels[index]


class OnDevice:
    """Wraps a DataLoader so that the kit's run_epoch can use it: batches moved to the device."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device
        self.n_images = len(loader.dataset)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _epoch_seconds(module, model, optimizer, train, test, device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    module.run_epoch(model, train, optimizer)
    module.run_epoch(model, test)                 # ends with .tolist(): the device is synchronised
    return time.perf_counter() - started


def bench_data(dataset="auto", data_dir="./data", epochs=3, device="auto", autoencoder_type="vae"):
    """Print and return (kit seconds per epoch, DataLoader seconds per epoch, ratio)."""
    import torch
    module = load_reference_module(course_config.VAE)
    dataset, data_dir = choose_dataset(module, dataset, Path(data_dir))
    device = kit_data.pick_device(device)
    train_x, train_y, test_x, test_y = kit_data.load_digits(dataset, data_dir)
    print(f"bench data: {dataset} ({len(train_x)} train / {len(test_x)} test images), {autoencoder_type}, "
          f"device {device}, {torch.get_num_threads()} threads, batch 128")
    kit_train = kit_data.Batches(train_x.to(device), train_y.to(device), 128, shuffle=True, seed=0)
    kit_test = kit_data.Batches(test_x.to(device), test_y.to(device), 128)
    loader_kwargs = dict(batch_size=128, num_workers=0, pin_memory=device.type == "cuda")
    item_train = OnDevice(torch.utils.data.DataLoader(PerItemMNIST(train_x, train_y), shuffle=True, **loader_kwargs), device)
    item_test = OnDevice(torch.utils.data.DataLoader(PerItemMNIST(test_x, test_y), **loader_kwargs), device)

    def fresh_model():
        torch.manual_seed(0)
        model = module.Autoencoder(autoencoder_type, n_dims_data=train_x[0].numel()).to(device)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    kit_model, kit_optimizer = fresh_model()
    item_model, item_optimizer = fresh_model()
    _epoch_seconds(module, kit_model, kit_optimizer, kit_train, kit_test, device)         # warm-up
    _epoch_seconds(module, item_model, item_optimizer, item_train, item_test, device)
    kit, per_item = [], []
    for epoch in range(epochs):                    # alternate, so that drift hits both alike
        kit.append(_epoch_seconds(module, kit_model, kit_optimizer, kit_train, kit_test, device))
        per_item.append(_epoch_seconds(module, item_model, item_optimizer, item_train, item_test, device))
        print(f"  epoch {epoch}: kit {kit[-1]:.3f} s, per-item DataLoader {per_item[-1]:.3f} s")
    kit_median, item_median = statistics.median(kit), statistics.median(per_item)
    ratio = kit_median / item_median
    print(f"per-epoch time (train + test), median of {epochs}: kit {kit_median:.3f} s, "
          f"per-item DataLoader {item_median:.3f} s, ratio {ratio:.2f}")
    return kit_median, item_median, ratio


def bench_grade(repeat=3, batch=20, jobs=2):
    """Print the median time to grade the reference once, and a batch of copies of it."""
    from ..engine.batch import run_batch
    from ..engine.grade import all_reference_observations, grade_submission, make_reference_submission
    assignment = course_config.VAE
    all_reference_observations(assignment)
    with tempfile.TemporaryDirectory(prefix="vaekit-bench-") as scratch:
        scratch = Path(scratch)
        submission = make_reference_submission(assignment, scratch / "one")
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            grade_submission(assignment, submission)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"bench grade: one ordinary submission, sandbox on: median {median:.1f} s of {repeat} "
              f"({', '.join(f'{t:.1f}' for t in times)})")
        many = scratch / "many"
        many.mkdir()
        for index in range(batch):
            shutil.copytree(submission, many / f"student{index:02d}")
        started = time.perf_counter()
        run_batch(assignment, many, scratch / "out", jobs=jobs)
        total = time.perf_counter() - started
        print(f"bench grade: batch of {batch} copies with --jobs {jobs}: {total:.1f} s in all, "
              f"{total / batch:.1f} s per submission ({total / batch / median:.2f} x one alone)")
    return median, total


def bench_share(repeat=1):
    """Print the honest submission's grading time alone, beside the CPU hog with control groups and
    beside it without; returns {setting: median seconds}."""
    from ..engine import cpushare
    from ..engine.batch import run_batch
    from ..engine.grade import all_reference_observations, make_reference_submission
    from . import catalog
    assignment = course_config.VAE
    all_reference_observations(assignment)
    hog = next(e for e in catalog.entries_for(assignment) if e.name == "h_cpu_hog")
    medians = {}
    with tempfile.TemporaryDirectory(prefix="vaekit-bench-") as scratch:
        scratch = Path(scratch)
        alone, beside = scratch / "alone", scratch / "beside"
        make_reference_submission(assignment, alone / "honest")
        make_reference_submission(assignment, beside / "honest")
        catalog.build(dataclasses.replace(hog, results=None), assignment, catalog.Context(), None, beside / "hog")
        settings = [("alone", alone, None), ("beside the hog, control groups", beside, None),
                    ("beside the hog, no control groups", beside, "1")]
        for label, folder, disable in settings:
            times = []
            for run in range(repeat):
                if disable:
                    os.environ[cpushare.DISABLE_ENV] = disable
                try:
                    rows = run_batch(assignment, folder, scratch / f"out-{len(medians)}-{run}", jobs=2)
                finally:
                    os.environ.pop(cpushare.DISABLE_ENV, None)
                honest = next(r for r in rows if r["submission"] == "honest")
                times.append(honest["seconds"])
            medians[label] = statistics.median(times)
            print(f"bench share: honest submission {label}: {medians[label]:.1f} s "
                  f"({medians[label] / medians['alone']:.2f} x alone), score {honest['total']}", flush=True)
    return medians
