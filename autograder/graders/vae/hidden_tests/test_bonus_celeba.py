"""Bonus: the CelebA subset, the face transform and the face VAE's result files."""

from autograder.graders.vae.hidden_tests.checks import check_run_files
from autograder.engine.judge import fail, graded


def subset(student, case):
    observed = student.get("celeba_subset", case)
    if not observed.get("is_subset"):
        fail(f"celeba_subset returned a {observed.get('type')}; it should return a torch.utils.data.Subset")
    return observed


@graded("bonus", 2, "celeba_subset: a Subset of the right size")
def test_celeba_subset_size(student, reference):
    if subset(student, "n100_seed0")["length"] != 100:
        fail("celeba_subset(dataset, n_images=100) should hold 100 examples")
    if subset(student, "larger_than_data")["length"] != 300:
        fail("when the dataset has fewer than n_images examples, celeba_subset should return all of them")
    if subset(student, "defaults")["length"] != reference.get("celeba_subset", "defaults", "length"):
        fail("with the default n_images, celeba_subset should keep 50,000 examples of a larger dataset")
    if not subset(student, "n100_seed0")["items_match"]:
        fail("the Subset's items are not the dataset's items at its indices")


@graded("bonus", 1, "celeba_subset: distinct indices, all inside the dataset")
def test_celeba_subset_distinct(student):
    for case in ("n100_seed0", "defaults", "larger_than_data"):
        observed = subset(student, case)
        if observed["n_distinct"] != observed["length"]:
            fail("celeba_subset picks some images twice: draw the indices without replacement (a permutation)")
        if not observed["in_range"]:
            fail("celeba_subset holds indices outside the dataset")


@graded("bonus", 2, "celeba_subset: the same subset for the same seed, another for another seed")
def test_celeba_subset_seeded(student):
    first, again = subset(student, "n100_seed0"), subset(student, "n100_seed0_again")
    if first["digest"] != again["digest"]:
        fail("two calls with the same seed gave different subsets: draw the indices from a generator "
             "seeded with `seed`, not from the global random state")
    if subset(student, "n100_seed1")["digest"] == first["digest"]:
        fail("seeds 0 and 1 gave the same subset: the seed should choose the subset")


@graded("bonus", 1, "celeba_transform: a float image tensor (3, S, S) in [0, 1]")
def test_celeba_transform(student):
    for case, side in (("size64", 64), ("size32", 32)):
        observed = student.get("celeba_transform", case)
        if "returned" in observed:
            fail("the transform should turn a PIL image into a torch.Tensor (transforms.ToTensor)")
        if observed["shape"] != [3, side, side]:
            fail(f"celeba_transform({side}) gives images of shape {tuple(observed['shape'])}; it should be "
                 f"(3, {side}, {side}): crop to a square, then resize")
        if observed["dtype"] not in ("float32", "float64") or observed["min"] < 0 or observed["max"] > 1:
            fail("the transformed images should be floats in [0, 1]")


@graded("bonus", 2, "Face VAE result files: every epoch's losses, the last epoch's reconstructions and samples")
def test_celeba_result_files(results):
    check_run_files(results, "bonus")
