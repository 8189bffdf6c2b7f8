"""The selfcheck catalog of the vae assignment (the format: autograder/catalog/__init__.py)."""

from autograder.catalog.vae.correct import BLANK, REFERENCE, VARIANTS
from autograder.catalog.vae.hostile import HOSTILE
from autograder.catalog.vae.malformed import MALFORMED
from autograder.catalog.vae.mutants import MUTANTS

ENTRIES = (REFERENCE, BLANK, *VARIANTS, *MUTANTS, *HOSTILE, *MALFORMED)
