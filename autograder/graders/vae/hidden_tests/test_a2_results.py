"""A.2: the autoencoder's training run, as handed in under results/."""

from autograder.graders.vae.hidden_tests.checks import check_final_losses, check_run_files
from autograder.engine.judge import graded


@graded("A.2", 2, "AE result files: every epoch's losses, the last epoch's reconstructions and samples")
def test_ae_result_files(results):
    check_run_files(results, "A.2")


@graded("A.2", 3, "AE final losses within the reference runs' range")
def test_ae_final_losses(results):
    check_final_losses(results, "A.2")
