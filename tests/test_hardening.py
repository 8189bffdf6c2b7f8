"""Hardening of the grader against an attacking submission (issue 9): isolation modes, killing by
uid, the worker's audit hook, escaped worker text, distinct batch output folders."""

import os
import subprocess
import sys
import time

import pytest

from autograder.engine import batch, sandbox
from autograder.engine.worker import worker


def test_batch_output_folders_are_distinct_whatever_the_names():
    names = ["alice", "alice.zip", "alice-2", "Alice", "a b", "a_b", "..", "ü"]
    folders = batch.output_folders(names)
    assert len({f.lower() for f in folders.values()}) == len(names)
    assert folders["alice-2"] == "alice-2" and folders["a_b"] == "a_b"     # clean names keep theirs


def test_worker_text_is_escaped_for_the_terminal():
    text = sandbox.clean_text("ok\n\x1b[2J\x07\u202eend\t")
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text.startswith("ok\n") and text.endswith("end\t") and "\\x1b" in text


def test_without_bwrap_and_root_grading_refuses_unless_asked(monkeypatch):
    monkeypatch.setenv("KIT_NO_BWRAP", "1")
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    monkeypatch.setattr(sandbox.os, "getuid", lambda: 1000)
    assert sandbox.isolation_mode() == "unsafe"
    assert "--unsafe-local" in sandbox.refusal()
    with pytest.raises(sandbox.SandboxUnavailable):
        sandbox.run_worker("/nonexistent/vae.py", [], 0, None, None)
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert sandbox.refusal() is None


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to start processes as another uid")
def test_kill_uid_ends_every_generation():
    uid = sandbox.worker_uid() + 7
    spawn = 'if [ "$1" -gt 0 ]; then sh -c "$0" "$0" $(($1 - 1)) & fi; exec sleep 300'
    subprocess.Popen(["sh", "-c", spawn, spawn, "8"], user=uid, cwd="/", group=uid, extra_groups=[], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = time.monotonic() + 10
    while len(sandbox._pids_of(uid)) < 9 and time.monotonic() < stop:
        time.sleep(0.05)
    assert len(sandbox._pids_of(uid)) >= 9
    sandbox._kill_uid(uid)
    assert sandbox._pids_of(uid) == []


HOOKED = r'''
import collections, gc, sys
sys.path.insert(0, sys.argv[1])
import worker
def trusted():
    return sys._getframe(0)
worker.install_audit_hook([trusted])
refused = []
for name, call in [("gc", gc.get_objects), ("trace", lambda: sys.settrace(None)),
                   ("frames", sys._current_frames), ("ctypes", lambda: __import__("ctypes").CDLL(None)),
                   ("own frame", lambda: trusted())]:
    try:
        call()
    except ValueError:
        refused.append(name)
try:
    1 / 0
except ZeroDivisionError as error:
    try:
        error.__traceback__.tb_frame
    except ValueError:
        refused.append("tb_frame")
Point = collections.namedtuple("Point", "x y")          # honest code that asks for its caller's frame
print(",".join(refused), Point(1, 2).x)
'''


def test_audit_hook_refuses_introspection_but_not_honest_code():
    done = subprocess.run([sys.executable, "-I", "-c", HOOKED, str(sandbox.WORKER_DIR)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gc,trace,frames,ctypes,tb_frame", "1"]
