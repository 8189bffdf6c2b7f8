"""Shared fixtures of the kit's own tests."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT / "assignments" / "common", ROOT):   # kit_data (imported by vae.py), course_config
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import course_config  # noqa: E402


def import_file(path, name):
    """Import a Python file as a fresh module called name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def assignment():
    return course_config.VAE


@pytest.fixture(scope="session")
def reference_vae(assignment):
    """The reference vae.py (the single source), imported."""
    return import_file(assignment.reference_file, "vae_reference_under_test")


@pytest.fixture(scope="session")
def kit_data():
    """The given data plumbing (assignments/common/kit_data.py), imported."""
    return import_file(course_config.COMMON_DIR / "kit_data.py", "kit_data")


@pytest.fixture(scope="session")
def released_vae(assignment):
    """The released vae.py (TODOs stubbed), imported."""
    return import_file(assignment.release_dir / assignment.student_file, "vae_release_under_test")


@pytest.fixture(scope="session")
def shared_mnist():
    """../shared/data, when it holds the real MNIST test split; skips otherwise."""
    raw = course_config.SHARED_DATA_DIR / "MNIST" / "raw"
    if not (raw / "t10k-images-idx3-ubyte.gz").is_file() or not (raw / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"the real MNIST test split is not in {raw} (set VAEKIT_SHARED_DATA to its folder)")
    return course_config.SHARED_DATA_DIR

