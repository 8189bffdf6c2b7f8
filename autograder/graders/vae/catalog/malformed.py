"""Malformed submissions: missing, misnamed, empty, broken or misplaced files. Each gets a clear
message in feedback.md (the phrases listed) and a score for what could be graded.
"""

import random

from autograder.qa.catalog import Code, Edit, Entry

FILES_ONLY = {"A.1": 0, "B.2": "files", "C": "files", "bonus": "files"}     # A.2 is all result files
CODE_ONLY = {"A.2": 0, "B.2": "code", "C": "code", "bonus": "code"}


def bom_and_crlf(data):
    """Saved by a Windows editor: a UTF-8 byte-order mark and CRLF line ends."""
    return b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")


def nothing(data):
    return b""


def binary_garbage(data):
    """Random bytes (NULs included) of the reference's length, the same every run."""
    return random.Random(0).randbytes(len(data))


def malformed(name, does, expect, feedback, **options):
    return Entry(name, "malformed", does, expect=expect, feedback=feedback, **options)


MALFORMED = (
    malformed("x_no_vae_py", "no vae.py at all, only results/ and the notebook", FILES_ONLY,
              ("No `vae.py` was found",), code=None),
    malformed("x_misnamed", "the code is handed in as 'vae (1).py'", {},
              ("There is no `vae.py`, but `vae (1).py`",), code=Code(filename="vae (1).py")),
    malformed("x_empty_file", "vae.py is empty", FILES_ONLY,
              ("`vae.py` is empty",), code=Code(transform=nothing)),
    malformed("x_syntax_error", "vae.py has a syntax error (a missing colon)", FILES_ONLY,
              ("could not be imported: SyntaxError",),
              code=Code(edits=(Edit("    def sample(self, mu, logvar):\n", "    def sample(self, mu, logvar)\n"),))),
    malformed("x_binary_garbage", "vae.py holds random binary bytes", FILES_ONLY,
              ("could not be imported",), code=Code(transform=binary_garbage)),
    malformed("x_bom_crlf", "vae.py saved with a UTF-8 BOM and CRLF line ends: graded exactly like the clean file",
              {}, (), code=Code(transform=bom_and_crlf)),
    malformed("x_broken_notebook", "vae.ipynb is cut off (broken JSON); the code is graded anyway", {},
              ("is not a readable notebook",), notebook=b'{"cells": [{"cell_type": "markdown", "source": ["# VAE'),
    malformed("x_notebook_nested_json", "vae.ipynb is 100,000 opening brackets (JSON nested too deep to parse)", {},
              ("is not a readable notebook",), notebook=b"[" * 100_000),
    malformed("x_no_notebook", "no vae.ipynb", {}, ("No `vae.ipynb` was found",), notebook=None),
    malformed("x_nested_folder", "everything inside a folder (a zip unpacked with its top folder)", {},
              ("was found in the folder `hw3-submission/`",), folder="hw3-submission"),
    malformed("x_no_results", "no results/ folder: only the code can be graded", CODE_ONLY,
              ("No `results/` folder was found",), results=None),
)
