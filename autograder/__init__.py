"""The VAE course kit's tooling: release, grade, batch, reference, package, selfcheck.

Run it from the kit's root as ``python -m autograder COMMAND ...``.
"""
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
if str(KIT_ROOT) not in sys.path:        # course_config.py sits at the kit's root
    sys.path.insert(0, str(KIT_ROOT))
