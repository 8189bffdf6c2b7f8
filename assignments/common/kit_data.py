"""Given data plumbing of the kit's assignments: you never edit this file.

It loads the data sets once into uint8 tensors (MNIST from its IDX files, with torchvision's
download when they are missing; MNIST's test split alone, cut in two; generated digit-like
images for offline tries; CelebA faces, decoded once), cuts mini-batches from tensors that sit on
the training device, reads perf_metrics.csv and picks the device. The grader supplies its own
copy of this file when it runs your code.
"""

import csv
import gzip
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from tqdm.auto import tqdm


class DataNotFoundError(RuntimeError):
    """A data set's files are missing; the message says which files to put where."""


class Batches:
    """Mini-batches cut from tensors that already sit on the training device.

    images: uint8 (N, C, H, W) with values 0..255; labels: long (N,). Iterating yields
    (x, y) with x float (B, C*H*W) in [0, 1] and y long (B,). With shuffle=True each pass
    visits the examples in a new random order drawn from a seeded generator.
    """

    def __init__(self, images, labels, batch_size=128, shuffle=False, seed=0):
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.image_shape = tuple(images.shape[1:])

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    @property
    def n_images(self):
        return len(self.images)

    def __iter__(self):
        n = len(self.images)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            x = self.images[index].reshape(len(index), -1).float().div_(255)
            yield x, self.labels[index]


def binarize(images):
    """Threshold uint8 images at 0.5 (that is, 127.5 of 255): returns uint8 images of 0 and 255."""
    return (images.float() / 255 > 0.5).to(torch.uint8) * 255


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path):
    """Read an IDX file of unsigned bytes (the MNIST format), gzipped or not, into a uint8 tensor."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    n_dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(n_dims)]
    offset = 4 + 4 * n_dims
    if len(data) - offset != math.prod(shape):
        raise ValueError(f"{path} is truncated: expected {math.prod(shape)} values after the header")
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).reshape(shape)


def mnist_paths(data_dir, split):
    """The (images, labels) IDX files of MNIST's "train" or "test" split under data_dir/MNIST/raw,
    gzipped or not; None when either is missing."""
    raw_dir = Path(data_dir) / "MNIST" / "raw"
    paths = []
    for name in MNIST_FILES[split]:
        found = [p for p in (raw_dir / name, raw_dir / f"{name}.gz") if p.is_file()]
        if not found:
            return None
        paths.append(found[0])
    return paths


def load_mnist_split(data_dir, split, download=True):
    """Return (images uint8 (N, 1, 28, 28), labels long (N,)) of MNIST's "train" or "test" split.

    Reads data_dir/MNIST/raw/*-ubyte[.gz]; when the files are missing, torchvision downloads them.
    """
    paths = mnist_paths(data_dir, split)
    if paths is None and download:
        try:
            torchvision.datasets.MNIST(data_dir, train=(split == "train"), download=True)
        except Exception:  # no network: the message below says what to do
            pass
        paths = mnist_paths(data_dir, split)
    if paths is None:
        raw_dir = Path(data_dir) / "MNIST" / "raw"
        wanted = ", ".join(f"{name}.gz" for name in MNIST_FILES[split])
        raise DataNotFoundError(
            f"MNIST's {split} split is not in {raw_dir} and could not be downloaded: "
            f"put {wanted} into that folder (or run once with internet access). "
            + OFFLINE_HINT.replace("DATA_DIR", str(data_dir)))
    images, labels = (read_idx(path) for path in paths)
    return images.unsqueeze(1), labels.long()


def load_mnist(data_dir, download=True):
    """MNIST's 60,000 training and 10,000 test images, binarised."""
    train_x, train_y = load_mnist_split(data_dir, "train", download)
    test_x, test_y = load_mnist_split(data_dir, "test", download)
    return binarize(train_x), train_y, binarize(test_x), test_y


def load_mnist_test_split(data_dir, n_train=8000, seed=0):
    """Only MNIST's official test split (10,000 images), cut by a seeded shuffle into
    n_train training images and the rest for testing. For machines without the training files."""
    images, labels = load_mnist_split(data_dir, "test", download=False)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train:]
    images = binarize(images)
    return images[train], labels[train], images[test], labels[test]


def make_synthetic_digits(n_images, seed=0, size=28):
    """Generate digit-like images, not MNIST: the digits 0-9 typeset in the fonts that matplotlib
    ships, then randomly rotated, scaled, sheared, shifted, thickened or thinned, and binarised.

    Returns (images uint8 (N, 1, size, size) of 0 and 255, labels long (N,)). Deterministic in seed.
    """
    generator = torch.Generator().manual_seed(seed)
    glyphs = _digit_glyphs(size)                                   # (n_fonts, 10, size, size)
    n_fonts = glyphs.shape[0]
    labels = torch.randint(0, 10, (n_images,), generator=generator)
    fonts = torch.randint(0, n_fonts, (n_images,), generator=generator)
    images = glyphs[fonts, labels].unsqueeze(1)                     # (N, 1, size, size)

    def uniform(low, high):
        return low + (high - low) * torch.rand(n_images, generator=generator)

    angle = uniform(-0.35, 0.35)                                    # radians, about +-20 degrees
    scale = uniform(0.8, 1.15)
    shear = uniform(-0.3, 0.3)
    shift_x, shift_y = uniform(-0.12, 0.12), uniform(-0.12, 0.12)   # fractions of half the image
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, shift_x], dim=1),
        torch.stack([sin, cos + shear * sin, shift_y], dim=1),
    ], dim=1)                                                       # (N, 2, 3) affine maps
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, align_corners=False)

    stroke = torch.randint(0, 3, (n_images,), generator=generator)  # 0 thinner, 1 as is, 2 bolder
    thicker = F.max_pool2d(images, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-images, 3, stride=1, padding=1)
    images = torch.where((stroke == 2).view(-1, 1, 1, 1), thicker, images)
    images = torch.where((stroke == 0).view(-1, 1, 1, 1), 0.5 * (images + thinner), images)
    return (images > 0.5).to(torch.uint8) * 255, labels


def _digit_glyphs(size):
    """Typeset 0-9, centred, in each of matplotlib's DejaVu fonts: float (n_fonts, 10, size, size)."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    font_names = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
                  "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSans-Oblique.ttf"]
    glyphs = []
    for font_name in font_names:
        font = ImageFont.truetype(str(font_dir / font_name), size=int(size * 0.8))
        for digit in "0123456789":
            canvas = Image.new("L", (size, size), 0)
            draw = ImageDraw.Draw(canvas)
            left, top, right, bottom = draw.textbbox((0, 0), digit, font=font)
            position = ((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top)
            draw.text(position, digit, fill=255, font=font)
            glyphs.append(torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).reshape(size, size).float())
    return torch.stack(glyphs).reshape(len(font_names), 10, size, size) / 255


def load_synthetic_digits(n_train=10000, n_test=2000, seed=0):
    """The generated digits (see make_synthetic_digits), with disjoint seeds for train and test."""
    train_x, train_y = make_synthetic_digits(n_train, seed=seed)
    test_x, test_y = make_synthetic_digits(n_test, seed=seed + 1)
    return train_x, train_y, test_x, test_y


CELEBA_SMILING = 31   # index of the "Smiling" attribute: the label that colours manifold.png


def load_celeba(data_dir, transform, choose_subset, n_images=50000, seed=0, n_workers=min(4, os.cpu_count() or 1)):
    """A random subset of CelebA's train split (n_images) and of its test split (a tenth as
    many), decoded once into uint8 tensors (N, 3, S, S); labels are the "Smiling" attribute.

    transform: what turns one face into a float tensor (3, S, S) (the student's celeba_transform);
    choose_subset(dataset, n_images, seed): the student's celeba_subset.
    """
    splits = []
    for split, n in (("train", n_images), ("test", max(1, n_images // 10))):
        try:
            faces = torchvision.datasets.CelebA(data_dir, split=split, target_type="attr",
                                                transform=transform, download=False)
        except RuntimeError as error:
            raise DataNotFoundError(
                f"CelebA is not in {Path(data_dir) / 'celeba'}: put img_align_celeba/ and the "
                "list_*.txt and identity_CelebA.txt files there (torchvision's layout; "
                "download them by hand from the CelebA web page).") from error
        loader = torch.utils.data.DataLoader(choose_subset(faces, n, seed), batch_size=256,
                                             num_workers=n_workers)
        images, labels = [], []
        for x, attributes in tqdm(loader, desc=f"decoding CelebA {split}", leave=False):
            images.append((x * 255).round().to(torch.uint8))
            labels.append(attributes[:, CELEBA_SMILING].long())
        splits += [torch.cat(images), torch.cat(labels)]
    return tuple(splits)


DIGIT_DATASETS = ("mnist", "mnist-test-split", "synthetic-digits")
OFFLINE_HINT = ("Without internet access, train on the 10,000 MNIST test images you may have "
                "(--dataset mnist-test-split, files in DATA_DIR/MNIST/raw) or on generated digits "
                "(--dataset synthetic-digits) to try your code; graded results must come from the real "
                "MNIST run.")


def load_digits(name, data_dir):
    """Return train_images, train_labels, test_images, test_labels (uint8 (N, 1, 28, 28), long (N,))."""
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "mnist-test-split":
        return load_mnist_test_split(data_dir)
    if name == "synthetic-digits":
        return load_synthetic_digits()
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DIGIT_DATASETS)}")


def guess_image_shape(n_dims_data):
    side = math.isqrt(n_dims_data)
    if side * side == n_dims_data:
        return (1, side, side)
    side = math.isqrt(n_dims_data // 3)
    return (3, side, side)


def read_metrics(path):
    """Read perf_metrics.csv into a dict of column name -> list of floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {column: [float(row[column]) for row in rows] for column in (rows[0] if rows else [])}


def pick_device(name):
    """"auto" picks a CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
