"""The selfcheck catalog of the vae assignment (the format: autograder/catalog/__init__.py)."""

from autograder.graders.vae.catalog.correct import BLANK, REFERENCE, VARIANTS
from autograder.graders.vae.catalog.hostile import HOSTILE
from autograder.graders.vae.catalog.malformed import MALFORMED
from autograder.graders.vae.catalog.mutants import MUTANTS

ENTRIES = (REFERENCE, BLANK, *VARIANTS, *MUTANTS, *HOSTILE, *MALFORMED)
