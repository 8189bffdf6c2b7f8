"""What the hidden tests judge with: the observations, the math they are checked against, the
result files, and the hints that explain a failure. Runs in the grader's process; it never
imports a submission.
"""

import base64
import contextlib
import csv
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch



def fail(message):
    """Fail the current hidden test with a message written for the student (no traceback)."""
    pytest.fail(message, pytrace=False)


@contextlib.contextmanager
def with_context(prefix):
    """Prefix the failure message of the checks inside the block (e.g. the sizes they used)."""
    try:
        yield
    except pytest.fail.Exception as failure:
        fail(prefix + str(failure.msg))


# --- charging a mistake once -----------------------------------------------------------------
# A hidden test that fails only because an earlier test's mistake breaks what it measures is not
# charged again, but only when the grader RECOGNISED that mistake: the student's values equal what
# the grader itself computes for it (a missing sigmoid, a softplus on logvar, a KL without its 1/2).
# Such values cannot come without the rest of the code being right, so the waiver gives nothing for
# free; an unrecognised failure earns no waiver (DESIGN §9: no point without the work).

_recognised = set()          # names of this grading's tests that failed on a recognised mistake
_waived = {}                 # title of a test that skipped as "not charged" -> the test it blamed
_current = ()                # the names of the test running now: its title, and "task title"


def start_grading():
    _recognised.clear()
    _waived.clear()


def start_test(task, title):
    global _current
    _current = (title, f"{task} {title}")


def fail_recognised(message):
    """Fail the current test on a mistake the grader recognised in values it computed itself."""
    _recognised.update(_current)
    fail(message)


def not_charged(earlier, message):
    """End the current test as "not charged": it failed because of what the earlier test (named by
    its title, or "task title") found. The engine keeps it uncharged only if that test failed on a
    recognised mistake by the end of the grading (in whatever order the tests ran); otherwise it
    counts as failed with the same message."""
    if _current:
        _waived[_current[0]] = earlier
    pytest.skip(message)


def waiver_holds(title):
    """Whether the "not charged" outcome of the test titled title stands (see not_charged)."""
    return _waived.get(title) in _recognised


def graded(task, points, title):
    """Mark a hidden test with its task id, its points and the title the student sees."""
    def mark(function):
        function.grading = {"task": task, "points": points, "title": title}
        return function
    return mark


# --- observations -----------------------------------------------------------------------------

def explain_error(error):
    """A student-facing sentence for an error text from the worker."""
    if "NotImplementedError" in error and "TODO (" in error:
        todo = error[error.index("TODO ("):].split(")")[0] + ")"
        return f"{todo} is not written yet: it still raises NotImplementedError."
    return f"your code raised an error here: {error}"


class Observations:
    """The probes' results for one submission (or the reference)."""

    def __init__(self, worker_result=None, unavailable=None):
        self.worker_result = worker_result
        self.unavailable = unavailable

    def get(self, probe, *path):
        """The observed value at path inside probe's result; fails the test when it is missing."""
        if self.unavailable:
            fail(self.unavailable)
        entry = self.worker_result.observations.get(probe)
        if not isinstance(entry, dict):
            fail("this check could not run: the grader received no observation for it")
        if not entry.get("ok"):
            fail(explain_error(str(entry.get("error", "unknown error"))))
        value = entry.get("value")
        for key in path:
            value = _descend(value, key)
        return value

    def has(self, probe, *path):
        try:
            self.get(probe, *path)
        except pytest.fail.Exception:
            return False
        return True


def _descend(value, key):
    if isinstance(value, dict) and set(value) == {"error"}:
        fail(explain_error(str(value["error"])))
    try:
        value = value[key]
    except (KeyError, IndexError, TypeError):
        fail("this check could not run: an observation had an unexpected form")
    if isinstance(value, dict) and set(value) == {"error"}:
        fail(explain_error(str(value["error"])))
    return value


def matches_reference(student, reference, tolerances, probe, *path):
    """Whether the student's observation at (probe, *path) equals the reference's (tensors within
    tolerances); False when it is missing. For hints that depend on what else went right."""
    try:
        got, expected = student.get(probe, *path), reference.get(probe, *path)
        if isinstance(expected, dict) and "b64" in expected:
            return isinstance(got, dict) and "b64" in got and close(array(got), array(expected), tolerances)
        return got == expected
    except pytest.fail.Exception:
        return False


def kind_of(description):
    """"tensor", "tuple", "list", "None" or "other" for a describe() result."""
    return description.get("kind") if isinstance(description, dict) else "other"


def array(description, what="this value"):
    """The numpy float64 array of a tensor description; fails when it is not a tensor."""
    if not isinstance(description, dict) or "b64" not in description:
        got = description.get("type") or description.get("kind") if isinstance(description, dict) else "?"
        fail(f"{what} should be a torch.Tensor, but it was a {got}")
    try:
        shape = [int(n) for n in description["shape"]]
        data = np.frombuffer(base64.b64decode(description["b64"], validate=True), dtype="<f8")
        return data.reshape(shape)
    except (ValueError, TypeError, KeyError):
        fail(f"{what}: the grader could not read the observation")


def scalar_value(description, what):
    """The float of a one-element tensor description."""
    values = array(description, what)
    if values.size != 1:
        fail(f"{what} should be a single number (a scalar tensor), but it has shape {tuple(values.shape)}: "
             "sum over the batch and over all dimensions")
    return float(values.reshape(()))


def close(actual, expected, tolerances):
    actual, expected = np.asarray(actual), np.asarray(expected)
    return actual.shape == expected.shape and bool(
        np.allclose(actual, expected, rtol=tolerances.rtol, atol=tolerances.atol, equal_nan=False))


# --- result files -----------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CSV_BYTES = 2 << 20
MAX_PNG_BYTES = 20 << 20


def png_size(path):
    """(width, height) of a valid PNG file; raises ValueError saying what is wrong."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise ValueError(f"{path.name} is missing")
    if path.stat().st_size > MAX_PNG_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_PNG_BYTES >> 20} MB")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path.name} is not a PNG image")
    offset, size, ended = len(PNG_SIGNATURE), None, False
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        crc = data[offset + 8 + length:offset + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"{path.name} is a damaged PNG (chunk {kind!r} is cut or corrupt)")
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        if kind == b"IEND":
            ended = True
            break
        offset += 12 + length
    if size is None or not ended:
        raise ValueError(f"{path.name} is an incomplete PNG")
    return size


def read_metrics(path):
    """perf_metrics.csv as {column: [floats]}; raises ValueError saying what is wrong."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise ValueError("perf_metrics.csv is missing")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ValueError("perf_metrics.csv is unreasonably large")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValueError("perf_metrics.csv is empty")
    header = [name.strip() for name in rows[0]]
    columns = {name: [] for name in header}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"perf_metrics.csv line {number} has {len(row)} fields, the header {len(header)}")
        for name, field in zip(header, row):
            try:
                columns[name].append(float(field))
            except ValueError:
                raise ValueError(f"perf_metrics.csv line {number}: {name} is not a number") from None
    return columns
