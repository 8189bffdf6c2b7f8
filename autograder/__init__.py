"""The VAE course kit's tooling: release, grade, batch, reference, package, selfcheck.

Run it from the kit's root as ``python -m autograder COMMAND ...``.
"""
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
COMMON_DIR = KIT_ROOT / "assignments" / "common"   # given helper modules (kit_data, ...)
for _folder in (COMMON_DIR, KIT_ROOT):     # course_config.py sits at the kit's root
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))
