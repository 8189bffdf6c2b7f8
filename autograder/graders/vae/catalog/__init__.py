"""The selfcheck catalog of the vae assignment (the format: autograder/qa/catalog/__init__.py)."""

from autograder.graders.vae.catalog.correct import BLANK, REFERENCE, VARIANTS
from autograder.graders.vae.catalog.hostile import HOSTILE
from autograder.graders.vae.catalog.malformed import MALFORMED
from autograder.graders.vae.catalog.mutants import MUTANTS

ENTRIES = (REFERENCE, BLANK, *VARIANTS, *MUTANTS, *HOSTILE, *MALFORMED)

# `selfcheck vae --smoke` (part of `make test`): a few entries of each kind, chosen so that each
# guards a different part of the grader; the whole catalog runs in `make selfcheck`.
SMOKE = ("blank", "v_sequential", "m_decoder_no_sigmoid", "m_kl_no_half", "m_logvar_softplus",
         "m_encode_dataset_samples", "m_results_fabricated", "m_ae_short_run_renamed",
         "h_walk_frames", "h_forge_results", "h_take_reference_code", "h_endless_loop_in_encode",
         "h_kill_the_grader", "x_syntax_error")
