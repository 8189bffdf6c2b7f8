"""A fair CPU share for every grading: its worker in a control group (cgroup) of its own.

Where the grader may create control groups (as root, on cgroup v1's cpu hierarchy, or on a
cgroup v2 tree whose cpu controller can be enabled), each grading's worker runs in its own group,
every group with the same weight. The scheduler then splits the CPUs between gradings, not between
threads: a submission that starts sixty busy threads gets the share of a peer that starts one. The
group also caps how many processes the submission may have (where a pids controller is there), and
it is how everything the submission started is found and killed afterwards.

Where no group can be made (not root, no writable hierarchy), the kernel's autogroups stand in: the
worker starts a session of its own, and with autogroups on, the scheduler shares between sessions.
`describe()` says which holds, for the grading's isolation line.

A submission cannot leave its group: moving a process means writing to another group's
cgroup.procs, which only root may do, and the worker never runs as root (bwrap also hides /sys).
"""

import os
import secrets
import signal
import time
from pathlib import Path

DISABLE_ENV = "KIT_NO_CPU_GROUPS"     # set (by a benchmark, say): workers share the CPUs as plain processes
PREFIX = "kit-grading-"
V1_WEIGHT = ("cpu.shares", "1024")    # the default weight: every grading's group the same
V2_WEIGHT = ("cpu.weight", "100")


def _mounts():
    """(mount point, filesystem type, super options) of every cgroup filesystem."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                dash = fields.index("-")
                if fields[dash + 1] in ("cgroup", "cgroup2"):
                    found.append((Path(fields[4]), fields[dash + 1], set(fields[dash + 3].split(","))))
    except (OSError, ValueError, IndexError):
        pass
    return found


def _own_paths():
    """This process's cgroup path per v1 controller name, and under "" its v2 path."""
    paths = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    paths[name] = path.lstrip("/")
    except (OSError, ValueError):
        pass
    return paths


def _writable_parent(mount, own):
    """The folder under which this process may make groups (its own group's), or None."""
    parent = mount / own
    return parent if parent.is_dir() and os.access(parent, os.W_OK) else None


def _v1_parents():
    """{"cpu": folder, "pids": folder} for the v1 hierarchies we may write to."""
    own, parents = _own_paths(), {}
    for mount, kind, options in _mounts():
        if kind != "cgroup":
            continue
        for controller in ("cpu", "pids"):
            if controller in options and controller not in parents:
                parent = _writable_parent(mount, own.get(controller, ""))
                if parent is not None and (parent / "cgroup.procs").exists():
                    parents[controller] = parent
    return parents


def _v2_parent():
    """The v2 folder under which groups with the cpu controller can be made, or None."""
    own = _own_paths().get("", None)
    for mount, kind, _ in _mounts():
        if kind != "cgroup2" or own is None:
            continue
        parent = _writable_parent(mount, own)
        if parent is None:
            continue
        control = parent / "cgroup.subtree_control"
        try:
            if "cpu" not in control.read_text().split():
                control.write_text("+cpu")
            if "pids" not in control.read_text().split():
                try:
                    control.write_text("+pids")
                except OSError:
                    pass
            return parent
        except OSError:       # the controller is not ours to enable (processes live in our group)
            continue
    return None


def parents():
    """The folders under which this machine's grading groups are made (v1: cpu and pids; v2: one)."""
    v1 = _v1_parents()
    if "cpu" in v1:
        return list(v1.values())
    v2 = _v2_parent()
    return [v2] if v2 is not None else []


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _procs(folder):
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_all(folder, seconds=30):
    """SIGKILL every process in the group until it is empty (a fork between looks is caught by the next)."""
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        pids = _procs(folder)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _kill_and_remove(folder):
    """Empty the group, then remove it."""
    _kill_all(folder)
    for _ in range(50):                  # the kernel frees the group a moment after its last exit
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def _remove_stale(parent):
    """Groups left by graders that died (their pid is in the name) are emptied and removed."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir():
            try:
                owner = int(entry.name[len(PREFIX):].split("-")[0])
            except ValueError:
                continue
            if not _alive(owner):
                _kill_and_remove(entry)


class CpuGroup:
    """The control group(s) of one grading's worker. Use as a context manager; pass `join` to the
    worker's preexec function (it runs in the child, before the uid is dropped)."""

    def __init__(self, max_processes=None):
        self.folders = []            # one per hierarchy (v1: cpu, and pids if there; v2: one)
        self.kind = None
        if os.environ.get(DISABLE_ENV):
            return
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        parents = _v1_parents()
        if "cpu" in parents:
            self.kind = "cgroup v1"
            settings = {"cpu": [V1_WEIGHT], "pids": [("pids.max", str(max_processes))] if max_processes else []}
            for controller, parent in parents.items():
                self._make(parent, name, settings[controller])
        else:
            parent = _v2_parent()
            if parent is not None:
                self.kind = "cgroup v2"
                pids = [("pids.max", str(max_processes))] if max_processes and (
                    "pids" in (parent / "cgroup.subtree_control").read_text().split()) else []
                self._make(parent, name, [V2_WEIGHT, *pids])
        if self.kind and not self.folders:
            self.kind = None

    def _make(self, parent, name, settings):
        _remove_stale(parent)
        folder = parent / name
        try:
            folder.mkdir()
            for key, value in settings:
                (folder / key).write_text(value)
        except OSError:
            if folder.is_dir():
                _kill_and_remove(folder)
            return
        self.folders.append(folder)

    def join(self):
        """Move the calling process into the group(s); for a preexec function (no allocation of note)."""
        pid = str(os.getpid())
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as f:
                f.write(pid)

    def pids(self):
        """The processes now in the group."""
        return sorted({pid for folder in self.folders for pid in _procs(folder)})

    def kill(self):
        """Kill everything in the group, however it was started; the group stays for the next session."""
        for folder in self.folders:
            _kill_all(folder)

    def close(self):
        for folder in self.folders:
            _kill_and_remove(folder)
        self.folders = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe(group):
    """One phrase for the grading's isolation line: how this worker's CPU share is kept fair."""
    if group.kind:
        return f"fair CPU share: a control group of its own ({group.kind}, equal weight, process cap)"
    try:
        autogroups = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        autogroups = False
    if autogroups:
        return "fair CPU share: its own session's autogroup (no control group can be made here)"
    return "fair CPU share: none beyond the thread and CPU-time limits (no control group can be made here)"
