"""Hardening of the grader against an attacking submission (issue 9): isolation modes, killing by
uid, the worker's audit hook, escaped worker text, distinct batch output folders, a control group
per grading (a fair CPU share), the secret probe sets."""

import os
import subprocess
import sys
import time

import pytest

if __name__ == "__main__":       # run as a script (grade_entries, below): the kit's root on the path
    sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from autograder.engine import batch, cpushare, sandbox  # noqa: E402
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


def test_outputs_written_whatever_the_bytes_and_big_notebooks_not_parsed(tmp_path):
    import json

    import course_config
    from autograder.engine import grade
    name = os.fsdecode(b"r\xe9sultats\x1b[2J.py")            # an undecodable file name, as os.listdir gives it
    grade.write_outputs(tmp_path / "out", {"score": 1, "output": name}, f"# Feedback\n{name}\n")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["score"] == 1
    assert "sultats" in (tmp_path / "out" / "feedback.md").read_text(encoding="utf-8")
    notebook = tmp_path / "vae.ipynb"
    with open(notebook, "wb") as f:                              # sparse: no 21 MB written to disk
        f.truncate(grade.MAX_NOTEBOOK_BYTES + (1 << 20))
    message = grade.check_notebook(notebook, course_config.get_assignment("vae"))
    assert len(message) == 1 and "clear the large outputs" in message[0]


# --- hostile catalog entries graded in both isolation modes ------------------------------------

ATTACKS = ["blank", "h_walk_frames", "h_kill_the_grader", "h_take_reference_code", "h_write_into_kit", "h_deep_fork_chain"]
MARKER = "VAEKIT-HARDENING-FORGED"

# A private mount namespace shaped like a fresh grading container: /root may be passed through
# (0711) but not listed, so that a Python installed under /root is reachable for the worker's uid
# as a system Python is; /tmp is empty (what other work left there, world-readable, is not the
# grader's to guard) but for the output folder $OUT, bound back in.
UID_MODE_SHELL = r'''
keep=$(mktemp -d) && mount --bind /root "$keep" && mount -t tmpfs -o mode=0711 tmpfs /root &&
for entry in "$keep"/.pyenv; do if [ -e "$entry" ]; then mkdir -p "/root/${entry##*/}" && mount --bind "$entry" "/root/${entry##*/}"; fi; done &&
mkdir /root/old-tmp && mount --bind /tmp /root/old-tmp && mount -t tmpfs -o mode=1777 tmpfs /tmp &&
mkdir -p "$OUT" && mount --bind "/root/old-tmp/${OUT#/tmp/}" "$OUT" &&
case "$KIT" in /tmp/*) mkdir -p "$KIT" && mount --bind "/root/old-tmp/${KIT#/tmp/}" "$KIT";; esac &&
exec "$@"
'''


def grade_entries(names, out):
    """Build and grade the catalog entries names into out/<name>; print {name: {task: points}} as JSON."""
    import json
    import tempfile
    from pathlib import Path

    import course_config
    from autograder import KIT_ROOT
    from autograder.engine import grade
    from autograder.qa import catalog, selfcheck
    assignment = course_config.get_assignment("vae")
    out = Path(out)
    context = catalog.Context(kit_root=str(KIT_ROOT), batch_out=str(out), marker=MARKER)
    entries = {e.name: e for e in catalog.entries_for(assignment)}
    scores = {}
    with tempfile.TemporaryDirectory() as scratch:
        results = selfcheck.reference_results(assignment, Path(scratch) / "reference-results")
        for name in names:
            folder = catalog.build(entries[name], assignment, context, results, Path(scratch) / name)
            os.environ[sandbox.SECRETS_ENV] = str(out)
            done = subprocess.run([sys.executable, "-c", "import sys; from autograder.engine import grade; "
                                   "import course_config as c; grade.grade_to(c.get_assignment('vae'), "
                                   "sys.argv[1], sys.argv[2])", str(folder), str(out / name)],
                                  cwd=KIT_ROOT, capture_output=True, text=True, timeout=600)
            try:
                written = json.loads((out / name / "results.json").read_text())
                scores[name] = grade.task_scores(written)
                scores[name]["isolation"] = next((line for line in written.get("output", "").splitlines()
                                                  if line.startswith("sandbox:")), "")
            except (OSError, ValueError):
                scores[name] = {"unwritten": done.stderr[-500:]}
    print(json.dumps(scores))


def _forged_in_kit():
    from autograder import KIT_ROOT
    found = []
    for folder in ("autograder", "assignments", "solutions", ".cache", "course_config.py"):
        root = KIT_ROOT / folder
        for path in ([root] if root.is_file() else root.rglob("*")):
            try:
                if path.is_file() and path.stat().st_size < (8 << 20) and MARKER.encode() in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    return found


@pytest.mark.skipif(os.getuid() != 0, reason="the uid fallback needs root")
@pytest.mark.parametrize("mode", ["bwrap", "uid"])
def test_attacks_earn_nothing_and_change_nothing(mode, tmp_path):
    import json
    from autograder import KIT_ROOT
    if mode == "bwrap" and sandbox.isolation_mode() != "bwrap":
        pytest.skip("bubblewrap cannot run here")
    (tmp_path / "out").mkdir()
    env = {**os.environ, "KIT_NO_BWRAP": "1" if mode == "uid" else "", "OUT": str(tmp_path / "out"),
           "KIT": str(KIT_ROOT)}       # a checkout under /tmp (CI's clone, say) stays visible
    command = [sys.executable, str(KIT_ROOT / "tests" / "test_hardening.py"), str(tmp_path / "out"), *ATTACKS]
    if mode == "uid":
        command = ["unshare", "-m", "sh", "-c", UID_MODE_SHELL, "uid-mode", *command]
    done = subprocess.run(command, cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    blank_based = {"h_walk_frames", "h_kill_the_grader", "h_take_reference_code"}
    for name, got in scores.items():
        assert "unwritten" not in got, (name, got)
        assert ("unprivileged uid" in got["isolation"]) == (mode == "uid") or mode == "bwrap", got
        if name in blank_based:            # built on the blank release: any point beyond the blank's is unearned
            assert all(got[task] <= scores["blank"][task] for task in got if task != "isolation"), (name, got)
    assert not _forged_in_kit()
    forged = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()]
    assert not forged


if __name__ == "__main__":
    grade_entries(sys.argv[2:], sys.argv[1])


@pytest.mark.skipif(os.getuid() != 0, reason="the Gradescope layout is graded as root")
def test_gradescope_package_holds_no_solution_and_grades_the_reference_as_a_uid(tmp_path):
    """The zip unpacked into an /autograder-like layout: no solution source in it; setup.sh's modes
    applied; the reference graded from it as root with bubblewrap disabled: full marks, by a uid."""
    import json
    import stat
    import zipfile

    import course_config
    from autograder import KIT_ROOT
    from autograder.authoring.package import build_gradescope_zip
    from autograder.engine import grade
    assignment = course_config.get_assignment("vae")
    archive = build_gradescope_zip(assignment, tmp_path / "autograder.zip")
    root = tmp_path / "autograder"
    source = root / "source"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        zipped.extractall(source)
        setup = zipped.read("setup.sh").decode()
    assert "assignments/vae/vae.py" not in names and "reference_data/vae.json" in names
    for path in source.rglob("*"):
        if path.is_file():
            assert b"### BEGIN SOLUTION" not in path.read_bytes(), path
    assert "chmod -R go-rwx /autograder/source" in setup and "chmod 0711 /autograder" in setup
    os.chmod(root, 0o711)                    # what setup.sh does
    for path in [source, *source.rglob("*")]:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~0o077)
    submission = grade.make_reference_submission(assignment, root / "submission")
    (root / "results").mkdir()
    env = {**os.environ, "KIT_NO_BWRAP": "1", "OUT": str(root / "results"),
           "VAEKIT_CACHE": str(root / "cache"), "KIT": str(KIT_ROOT)}
    command = ["unshare", "-m", "sh", "-c", UID_MODE_SHELL.replace('"$OUT"', '"$KEEP"').replace("${OUT#", "${KEEP#"),
               "uid-mode", sys.executable, "-m", "autograder", "grade", "vae", str(submission),
               "--out", str(root / "results")]
    done = subprocess.run(command, cwd=source, env={**env, "KEEP": str(tmp_path)}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    assert "unprivileged uid" in results["output"]
    in_kit = grade.grade_to(assignment, submission, tmp_path / "in-kit")     # the same, from the kit itself
    assert grade.task_scores(results) == grade.task_scores(in_kit)
    assert results["score"] == in_kit["score"] > 0
    shipped = json.loads((source / "reference_data" / "vae.json").read_text())
    assert len(shipped["probe_sets"]) == assignment.seeds.probe_sets
    assert 0 <= results["extra_data"]["probe_set"] < assignment.seeds.probe_sets



# --- a fair CPU share: a control group per grading --------------------------------------------

SPINNERS = """
import os, sys
for _ in range(int(sys.argv[1])):
    if os.fork() == 0:
        os.setsid()                 # a session (and autogroup) of its own: only a cgroup holds them
        while True:
            pass
import time
time.sleep(600)
"""


def _running(pid):
    """pid is a live process (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


needs_groups = pytest.mark.skipif(cpushare.CpuGroup().kind is None,
                                  reason="no control group can be made here (needs root and a writable cgroup cpu hierarchy)")


@needs_groups
def test_control_groups_share_the_cpus_between_gradings_not_between_processes():
    """Eight spinning processes in one grading's group, one in another's: the one gets about as much
    CPU as the eight together (a ratio, so it holds on a busy machine too); killing by group leaves
    nothing, and the groups are removed."""
    groups = [cpushare.CpuGroup(64), cpushare.CpuGroup(64)]
    started = [subprocess.Popen([sys.executable, "-c", SPINNERS, str(n)], preexec_fn=group.join,
                                stdout=subprocess.DEVNULL) for group, n in zip(groups, (8, 1))]
    try:
        stop = time.monotonic() + 20
        while [len(g.pids()) for g in groups] != [9, 2] and time.monotonic() < stop:
            time.sleep(0.05)
        assert [len(g.pids()) for g in groups] == [9, 2]
        before = [_cpu_seconds(g.pids()) for g in groups]
        time.sleep(4)
        many, one = [_cpu_seconds(g.pids()) - b for g, b in zip(groups, before)]
        assert one > 0.5 * many, f"one process got {one:.2f} s of CPU, eight in another group {many:.2f} s"
    finally:
        pids = [pid for g in groups for pid in g.pids()]
        for group in groups:
            group.close()
        for process in started:
            process.wait(timeout=30)
    assert not any(_running(pid) for pid in pids)
    assert all(not folder.exists() for g in groups for folder in g.folders) and groups[0].folders == []


@needs_groups
def test_a_graded_worker_runs_in_its_own_group_and_nothing_outlives_it(tmp_path):
    """The worker (in bwrap or not) and all it forks are in the grading's group, with the process cap;
    after the grading no spinner is left and the group is gone."""
    import threading
    module = tmp_path / "spin.py"
    module.write_text("import sys\nsys.argv = ['spin', '3']\n" + SPINNERS.replace("time.sleep(600)", "time.sleep(2)"))
    probes = tmp_path / "probes"
    probes.mkdir()
    (probes / "probes.py").write_text("PROBES = {}\n\ndef error_text(error):\n    return repr(error)\n")
    import course_config
    seen, done = {}, threading.Event()

    def watch():
        while not done.is_set():
            for folder in cpushare.parents():
                for group in folder.glob(cpushare.PREFIX + "*"):
                    try:
                        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                    except OSError:            # removed between the glob and the read
                        continue
                    if len(pids) > len(seen.get(group, ())):
                        seen[group] = pids
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    job = sandbox.WorkerJob(probe_dir=probes, student_file="spin.py")
    result = sandbox.run_worker(module, [], 0, course_config.VAE.sandbox, job)
    done.set()
    watcher.join()
    assert "a control group of its own" in result.isolation
    assert seen and max(len(p) for p in seen.values()) >= 4          # the worker and its three spinners
    assert all(not group.exists() for group in seen)
    assert not any(_running(pid) for pids in seen.values() for pid in pids)


# --- the secret probe sets ------------------------------------------------------------------

def test_probe_seeds_are_drawn_secretly_kept_private_and_chosen_per_grading(tmp_path, monkeypatch):
    import json
    import stat

    import course_config
    from autograder.engine import grade
    monkeypatch.setattr(course_config, "CACHE_DIR", tmp_path / "cache")
    assignment = course_config.get_assignment("vae")
    seeds = grade.probe_seeds(assignment)
    assert len(seeds) == assignment.seeds.probe_sets == len(set(seeds))
    assert grade.probe_seeds(assignment) == seeds                       # drawn once per kit
    path = tmp_path / "cache" / "probe-seeds-vae.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text())["seeds"] == seeds
    monkeypatch.setattr(course_config, "CACHE_DIR", tmp_path / "another-kit")
    assert set(grade.probe_seeds(assignment)).isdisjoint(seeds)         # another kit, other seeds
    drawn = {grade.choose_probe_set(assignment) for _ in range(200)}
    assert drawn == set(range(assignment.seeds.probe_sets))
    assert grade.choose_probe_set(assignment, 3) == 3
    with pytest.raises(ValueError, match="no probe set"):
        grade.choose_probe_set(assignment, assignment.seeds.probe_sets)
