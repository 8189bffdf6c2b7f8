"""Run the worker on one submission file, isolated, and collect its observations.

With bubblewrap (bwrap): no network, its own PID namespace (nothing it starts outlives it),
a private, size-limited /tmp (also its working directory), the system read-only, the kit
invisible but for the engine's worker/ and the assignment's probes/, the submission copied into a scratch folder mounted
read-only, an unprivileged uid. Without bwrap, as root (Gradescope's containers): an
unprivileged uid of its own, which can read only a root-owned copy of worker/ and probes/, its
scratch copy of the submission and the Python installation: the kit, the cache, the output and
submission folders are closed to it (their modes are narrowed and then checked as that uid), and
it cannot signal the grader. Neither possible (not root, no bwrap): grading refuses unless an
unsafe local run is asked for by name (KIT_UNSAFE_LOCAL=1, the CLI's --unsafe-local). Always: limits on address space, CPU time, processes, file
size; a wall-clock deadline per submission and per probe that kills the whole process tree;
capped output. A probe that hangs or kills its process costs only itself: the worker is started
again for the probes after it. Where control groups can be made, each grading's worker has one of
its own with the same CPU weight as every other's (cpushare.py): a fair share under load.
"""

import ctypes
import dataclasses
import json
import os
import resource
import selectors
import stat
import shutil
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import cpushare

WORKER_DIR = Path(__file__).resolve().parent / "worker"
MAX_PRINTED = 256 << 20          # past this much printing, the worker is stopped
KEPT_PRINTED = 4096              # how much of the beginning and of the end of the printing is kept
UNSAFE_ENV = "KIT_UNSAFE_LOCAL"   # set: without bwrap and root, run the worker as this user anyway
SECRETS_ENV = "KIT_SECRET_PATHS"  # os.pathsep-separated folders the worker must not read (output, submissions)
KIT_ROOT = Path(__file__).resolve().parents[2]


class SandboxUnavailable(RuntimeError):
    """No isolation that keeps the grader's secrets from the worker can be had on this machine."""


def clean_text(text):
    """Worker text made safe for a terminal: control characters (but newline and tab) escaped."""
    return "".join(c if c in "\n\t" or c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


@dataclasses.dataclass
class WorkerResult:
    observations: dict                     # probe name -> {"ok": bool, "value" | "error"}
    import_error: str = None               # why the submission could not be imported
    notes: list = dataclasses.field(default_factory=list)   # timeouts, crashes, output caps
    printed_head: str = ""
    printed_tail: str = ""
    printed_bytes: int = 0
    tampered: str = None                   # which functions of the grader or torch the submission replaced
    sandboxed: bool = False
    isolation: str = ""                    # one line saying how the worker was isolated
    seconds: float = 0.0
    charged_seconds: float = 0.0           # the steps' time, less their waits for a CPU (see _Budget)


def bwrap_path():
    path = shutil.which("bwrap")
    if path is None or os.environ.get("KIT_NO_BWRAP"):
        return None
    return path


_BWRAP_WORKS = {}


def bwrap_works(path):
    """bwrap is installed and may create the namespaces we ask for (not always so in containers)."""
    if path not in _BWRAP_WORKS:
        args = [path, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
        try:
            _BWRAP_WORKS[path] = subprocess.run(args, capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_WORKS[path] = False
    return _BWRAP_WORKS[path]


def _namespace_args():
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session"]
    if os.getuid() != 0:       # unprivileged: a user namespace, mapped to nobody
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    return args


def _python_roots():
    """The folders the worker's Python needs, read-only: the interpreter and its packages."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry):
            roots.add(Path(entry))
    kept = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if root.exists() and not any(root.is_relative_to(k) for k in kept) and root != Path("/"):
            kept.append(root)
    return kept


def _bwrap_args(bwrap, scratch, tmp_bytes, probe_dir, mounts=()):
    # /tmp, /proc and /dev first: a Python (or a kit checkout's .venv) under /tmp is bound over them.
    args = [bwrap, *_namespace_args(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    binds = []
    for name in ("usr", "etc", "bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            binds.append(path)
    binds += [p for p in _python_roots() if not any(p.is_relative_to(b) for b in binds)]
    parents = sorted({str(parent) for b in binds for parent in b.parents if str(parent) not in ("/", "/tmp")},
                     key=lambda p: p.count("/"))
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for path in binds:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/grader", "--ro-bind", str(Path(probe_dir).parent / "worker"),
             "/grader/worker",
             "--ro-bind", str(probe_dir), "/grader/probes",
             # read-only: what the submission writes goes to the size-limited /tmp, never to the host's disk
             "--ro-bind", str(scratch), "/submission", "--chdir", "/tmp"]
    for host, name in mounts:           # WorkerJob.mounts: read-only folders beside the module
        args += ["--ro-bind", str(host), f"/submission/{name}"]
    return args


def _set_limits(limits, nproc, uid=None, join_group=None):
    def apply():
        if join_group is not None:   # first, while still allowed to move into the grading's cgroup
            join_group()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if uid is not None:          # never the grader's uid, and no way back (no_new_privs)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)     # PR_SET_NO_NEW_PRIVS
    return apply


def _pids_of(uid):
    """PIDs of the live processes that belong to uid (ours excluded; zombies of ours are reaped)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state == "Z":
                try:
                    os.waitpid(int(entry), os.WNOHANG)
                except ChildProcessError:
                    pass
                continue
            pids.append(int(entry))
    return pids


def _kill_uid(uid, seconds=30):
    """Kill every process of uid, however many generations it forked: a process of that uid sends
    SIGKILL to all the uid's processes at once (kill -1), until none is left."""
    stop = time.monotonic() + seconds
    while _pids_of(uid) and time.monotonic() < stop:
        try:
            subprocess.run(["kill", "-KILL", "-1"], user=uid, group=uid, extra_groups=[],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.02)


def _remove_files_of(uid):
    """What the worker uid left in the shared temporary folders (it may write only there and in its scratch)."""
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
            except OSError:
                pass


def become_subreaper():
    """Orphans of the worker become our children, so they can be found and killed (no bwrap)."""
    try:
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _children():
    """PIDs of our own child processes (orphans adopted as subreaper included)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                        found.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _kill_children(keep):
    """Kill and reap our child processes that are not in keep (those the worker left behind)."""
    for _ in range(5):
        left = _children() - keep
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (OSError, ChildProcessError):
                pass


def worker_uid():
    """An unprivileged uid for this grading process's worker, distinct between concurrent graders."""
    return 100000 + os.getpid() % 100000


class _Session:
    """One start of the worker: reads its observation lines and its printing until it ends."""

    def __init__(self, command, env, cwd, limits, nproc, pass_fd_pair, drop_to=None, join_group=None):
        self.read_fd, write_fd = pass_fd_pair
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        pass_fds=(write_fd,), start_new_session=True,
                                        preexec_fn=_set_limits(limits, nproc, drop_to, join_group))
        os.close(write_fd)
        self.token = secrets.token_hex(16)    # lines that do not start with it are not the worker's
        self.prefix = self.token.encode() + b" "
        try:
            self.process.stdin.write(f"{self.token}\n".encode())
            self.process.stdin.close()
        except OSError:                       # the worker is already gone: its end is read below
            pass
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.read_fd, selectors.EVENT_READ, "observations")
        self.selector.register(self.process.stdout, selectors.EVENT_READ, "printed")
        self.buffer = b""
        self.observation_bytes = 0

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.kill()
        except ProcessLookupError:
            pass

    def close(self):
        self.kill()
        self.process.wait()
        self.selector.close()
        os.close(self.read_fd)
        self.process.stdout.close()


@dataclasses.dataclass(frozen=True)
class WorkerJob:
    """What the worker runs: the assignment's probes (probe_dir holds probe_module, which defines
    PROBES), the name the submission is graded under (student_file, imported as its stem), and
    the kit's helper modules copied beside it (the kit's copies, never the student's)."""
    probe_dir: Path
    student_file: str
    probe_module: str = "probes"
    helper_files: tuple = ()
    mounts: tuple = ()          # (host folder, relative name): shown read-only beside the module
                                # (bound with bwrap, copied without it)

    @property
    def module_name(self):
        return Path(self.student_file).stem


def _python_readable():
    """The Python installation, as a folder an unprivileged uid cannot reach, or None if all can."""
    for root in _python_roots():
        if not _readable_by_all(root):
            return root
    return None


def isolation_mode(use_sandbox=True):
    """How the worker will be isolated here: "bwrap", "uid" (root without bwrap), "trusted"
    (use_sandbox=False: the reference) or "unsafe" (neither: refused unless asked for)."""
    if not use_sandbox:
        return "trusted"
    bwrap = bwrap_path()
    if bwrap is not None and bwrap_works(bwrap):
        return "bwrap"
    return "uid" if os.getuid() == 0 else "unsafe"


def refusal(use_sandbox=True):
    """Why grading must not run here (one sentence saying what to do), or None."""
    mode = isolation_mode(use_sandbox)
    if mode == "unsafe" and not os.environ.get(UNSAFE_ENV):
        return ("bubblewrap (bwrap) cannot run here and the grader is not root, so a submission would run "
                "as your own user and could read or change everything you can: install the Debian package "
                "'bubblewrap', or, to check your own work only (never for grades), pass --unsafe-local.")
    if mode == "uid" and _python_readable() is not None:
        return (f"bubblewrap cannot run here, and the worker's unprivileged user cannot reach the Python "
                f"installation ({_python_readable()}): install Python in a world-readable place, or make "
                "its folders world-readable (chmod o+rx), or install bubblewrap.")
    return None


def secret_paths():
    """What the worker must never read: the kit (reference solution, hidden tests, cache) and the
    folders named in KIT_SECRET_PATHS (the output folder, the other submissions)."""
    paths = [KIT_ROOT, *(Path(p) for p in os.environ.get(SECRETS_ENV, "").split(os.pathsep) if p)]
    return [p.resolve() for p in paths if p.exists()]


def _close(path, keep):
    """Take the 'other' permissions from path, but only traversal where a kept path lies below it."""
    try:
        info = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode) or path in keep:
        return
    below = [k for k in keep if k.is_relative_to(path)]
    if not below:
        if info.st_mode & 0o007:
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o007)
        return
    os.chmod(path, (stat.S_IMODE(info.st_mode) & ~0o007) | 0o001)
    for child in path.iterdir():
        _close(child, keep)


_CLOSED = {}


def close_secrets(uid, keep):
    """As root without bwrap: make the secret folders unreadable to uid, then check it as uid.
    Raises SandboxUnavailable naming what is still readable."""
    paths = secret_paths()
    key = tuple(paths)
    if _CLOSED.get(key) == uid:
        return
    keep = [Path(k).resolve() for k in keep]
    for path in paths:
        _close(path, keep)
    tried = []
    for path in paths:                       # the folder and what lies directly, or one level, below it
        tried.append(str(path))
        if path.is_dir():
            for child in sorted(path.iterdir())[:200]:
                if not any(k == child or k.is_relative_to(child) for k in keep):
                    tried.append(str(child))
                    if child.is_dir() and not child.is_symlink():
                        tried += [str(c) for c in sorted(child.iterdir())[:50]]
    check = ("import os, sys\n"
             "for p in sys.argv[1:]:\n"
             "    try:\n"
             "        os.listdir(p) if os.path.isdir(p) else os.close(os.open(p, os.O_RDONLY))\n"
             "        print(p)\n"
             "    except OSError:\n"
             "        pass\n")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", check, *tried], capture_output=True, text=True,
                          user=uid, group=uid, extra_groups=[], cwd="/", timeout=60)
    readable = [line for line in done.stdout.splitlines() if line]
    if done.returncode != 0 or readable:
        raise SandboxUnavailable(f"the worker's user could still read {readable[:3] or done.stderr[-300:]}; "
                                 "make these unreadable to other users (chmod o-rwx) or install bubblewrap")
    _CLOSED[key] = uid


def _stage(base, job_spec):
    """A root-owned, world-readable copy of worker/ and of the probes in base/grader."""
    grader = base / "grader"
    grader.mkdir(mode=0o755)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(WORKER_DIR, grader / "worker", ignore=ignore)
    shutil.copytree(job_spec.probe_dir, grader / "probes", ignore=ignore)
    for folder, dirs, files in os.walk(grader):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return grader


def run_worker(module_file, probe_names, seed, limits, job_spec, use_sandbox=True):
    """Run the probes on module_file (the student file) in a worker; returns a WorkerResult.

    limits: a course_config.Sandbox; job_spec: a WorkerJob. use_sandbox=False (or no usable
    bwrap) runs with the limits alone, and the result says so."""
    started = time.monotonic()
    why_not = refusal(use_sandbox)
    if why_not:
        raise SandboxUnavailable(why_not)
    mode = isolation_mode(use_sandbox)
    result = WorkerResult(observations={}, sandboxed=mode in ("bwrap", "uid"))
    result.isolation = {
        "bwrap": "sandbox: bubblewrap (no network, own PID namespace, private /tmp, read-only system, kit "
                 "hidden, unprivileged uid) plus resource limits",
        "uid": "sandbox: an unprivileged uid of its own (bubblewrap cannot run here) that can read only the "
               "worker, the probes, its copy of the submission and Python, plus resource limits",
        "unsafe": "sandbox: NONE: an unsafe local run as your own user (--unsafe-local), resource limits "
                  "and timeouts only; never use it for grades",
        "trusted": "sandbox: off (trusted code), resource limits and timeouts only"}[mode]
    base = Path(tempfile.mkdtemp(prefix="kit-worker-"))
    try:
        os.chmod(base, 0o711)                # others may pass through to their scratch, never list
        job = dataclasses.replace(job_spec, probe_dir=_stage(base, job_spec) / "probes")
        uid = worker_uid() if os.getuid() == 0 and mode in ("bwrap", "uid") else None
        if mode == "uid":
            close_secrets(uid, [*_python_roots(), base])
            become_subreaper()
        with cpushare.CpuGroup(limits.max_processes) as group:
            result.isolation += "; " + cpushare.describe(group)
            _run_sessions(module_file, list(probe_names), seed, limits, bwrap_path() if mode == "bwrap" else None,
                          base / "submission", result, started, job, uid, mode, group)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _prepare_scratch(module_file, scratch, uid, job_spec, bwrap=None):
    """Copy the submission's .py files into scratch (the student file normalised: no BOM, LF line
    ends), then the kit's helper modules over any copy of them the submission holds."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir()
    source_dir = Path(module_file).parent
    for path in source_dir.glob("*.py"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < (4 << 20):
            shutil.copyfile(path, scratch / path.name)
    data = Path(module_file).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    (scratch / job_spec.student_file).write_bytes(data.replace(b"\r\n", b"\n"))
    for helper in job_spec.helper_files:
        target = scratch / Path(helper).name
        if target.is_symlink() or target.exists():
            target.unlink()
        shutil.copyfile(helper, target)
    for host, name in job_spec.mounts:     # a mount point for bwrap, else a copy
        if bwrap:
            (scratch / name).mkdir(parents=True, exist_ok=True)
        else:
            shutil.copytree(host, scratch / name, symlinks=False)
    if uid is not None:                      # its own, closed to every other worker
        for path in [scratch, *scratch.iterdir()]:
            os.chown(path, uid, uid)
        os.chmod(scratch, 0o700)


def _readable_by_all(path):
    """Every folder from / down to path may be entered by any user (so a dropped uid can run Python)."""
    path = Path(path).resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _run_sessions(module_file, pending, seed, limits, bwrap, scratch, result, started, job_spec, uid, mode, group):
    deadline_total = started + limits.wall_seconds * BACKSTOP      # a backstop: the budget is charged time
    imported_once = False
    while pending or not imported_once:
        _prepare_scratch(module_file, scratch, uid, job_spec, bwrap)
        job = {"probes": pending, "seed": seed, "threads": limits.torch_threads, "uid": uid if bwrap else None,
               "module_name": job_spec.module_name, "probe_module": job_spec.probe_module}
        read_fd, write_fd = os.pipe()
        job["fd"] = write_fd
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "USER": "student", "LOGNAME": "student",
               "LANG": "C.UTF-8", "MPLCONFIGDIR": "/tmp/matplotlib", "MPLBACKEND": "Agg",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "",
               "OMP_NUM_THREADS": str(limits.torch_threads), "TORCH_HOME": "/tmp/torch"}
        if bwrap:
            job["module"] = f"/submission/{job_spec.student_file}"
            job["probe_dir"] = "/grader/probes"
            command = [*_bwrap_args(bwrap, scratch, limits.file_size_bytes * 4, job_spec.probe_dir,
                                    job_spec.mounts),
                       sys.executable, "-I", "-B",
                       "/grader/worker/worker.py", json.dumps(job)]
            cwd = None
        else:
            job["module"] = str(scratch / job_spec.student_file)
            job["probe_dir"] = str(job_spec.probe_dir)
            env["TMPDIR"] = str(scratch)
            env["HOME"] = env["MPLCONFIGDIR"] = env["TORCH_HOME"] = str(scratch)
            command = [sys.executable, "-I", "-B", str(Path(job_spec.probe_dir).parent / "worker" / "worker.py"),
                       json.dumps(job)]
            cwd = scratch
            become_subreaper()
        children_before = _children()
        nproc = limits.max_processes if uid is not None else len(_pids_of(os.getuid())) + 1 + limits.max_processes
        session = _Session(command, env, cwd, limits, nproc, (read_fd, write_fd), uid if mode == "uid" else None,
                           group.join if group.folders else None)
        try:
            outcome = _read_session(session, pending, limits, result, deadline_total, job_spec.student_file)
        finally:
            session.close()
            group.kill()
            if uid is not None:
                _kill_uid(uid)
                _remove_files_of(uid)
            if not bwrap:
                _kill_children(children_before)
        if outcome == "tampered":
            pending.clear()
            return
        if outcome == "import_failed":
            if imported_once:        # it imported before: only the probes left are lost
                for name in pending:
                    result.observations.setdefault(name, {"ok": False, "value": None, "error": (
                        f"not run: the worker could not be started again ({result.import_error})")})
                result.import_error = None
            pending.clear()
            return
        imported_once = True
        if outcome == "out_of_time":
            for name in pending:
                result.observations.setdefault(name, {"ok": False, "value": None, "error": (
                    f"not run: the submission used up its {limits.wall_seconds} s of grading time")})
            pending.clear()
            return


BACKSTOP = 10     # a step may take this many times its budget in wall-clock time while it works


def _tree_pids(root):
    """root and all its descendants (one scan of /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return tree


SAMPLE_SECONDS = 0.5   # how often a running step's threads are read (a thread that ends loses at most this)


def _thread_usage(root):
    """{(pid, tid): (CPU seconds, seconds runnable but waiting for a CPU)} of every thread of root's
    tree, from /proc/PID/task/TID/schedstat; None where the kernel does not keep schedstat."""
    usage = {}
    for pid in _tree_pids(root):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    ran, delay = f.read().split()[:2]
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                continue
            usage[(pid, task)] = (int(ran) / 1e9, int(delay) / 1e9)
    return usage


class _Budget:
    """One step's budget (the import, or a probe): `seconds` of CPU time, and `seconds` of waiting
    for anything but a CPU (a sleep, a lock, input), counted over the worker's whole process tree;
    a wall-clock backstop of BACKSTOP times that. On a busy machine a step that is merely slow
    waits for a CPU, which costs it nothing. Without schedstat, the wall clock alone.

    Threads come and go during a step (the worker runs each probe on a fresh thread): each thread's
    counters are kept as last seen (sampled every SAMPLE_SECONDS), so one that ended still counts
    with what it had done, and one that was there before the step counts only what it did since."""

    def __init__(self, root, seconds):
        self.root, self.seconds = root, seconds
        self.started, self.ended = time.monotonic(), None
        usage = _thread_usage(root)
        self.base = dict(usage) if usage is not None else None
        self.last = dict(usage or {})

    def check_at(self):
        return self.started + self.seconds

    def close(self):
        """The step is over: sample its threads a last time and stop its clock."""
        if self.ended is None:
            self.sample()
            self.ended = time.monotonic()

    def sample(self):
        """Read the threads' counters now (called while the step runs)."""
        if self.base is None:
            return
        usage = _thread_usage(self.root)
        if usage is None:
            self.base = None
            return
        self.last.update(usage)

    def used(self):
        """(CPU seconds, seconds waiting for a CPU) of the step so far, over every thread seen."""
        cpu = waited = 0.0
        for thread, (ran, delay) in self.last.items():
            ran_before, delay_before = self.base.get(thread, (0.0, 0.0))
            cpu += ran - ran_before
            waited += delay - delay_before
        return cpu, waited

    def charged(self):
        """Seconds the step counts against the submission's total: its wall time less the time its
        threads waited for a CPU (as last sampled), so that a busy machine costs it nothing."""
        wall = (self.ended or time.monotonic()) - self.started
        if self.base is None:
            return wall
        return max(0.0, wall - self.used()[1])

    def spent(self):
        """None while within budget, else why not (one phrase)."""
        wall = time.monotonic() - self.started
        if self.base is None or wall >= self.seconds * BACKSTOP:
            return f"did not finish within {self.seconds if self.base is None else self.seconds * BACKSTOP} s"
        self.sample()
        if self.base is None:
            return f"did not finish within {self.seconds} s"
        cpu, waited_for_cpu = self.used()
        if cpu >= self.seconds:
            return f"used more than {self.seconds} s of CPU time"
        if wall - cpu - waited_for_cpu >= self.seconds:
            return f"waited (sleeping or blocked) more than {self.seconds} s"
        return None


def _read_session(session, pending, limits, result, deadline_total, student_file):
    """Read one worker start to its end. Removes finished probes from pending. Returns
    "done", "restart" (a probe hung or crashed; go on with the rest), "import_failed" or "out_of_time".
    Every step's charged time (see _Budget.charged) is added to result.charged_seconds: the
    submission's grading time is that total, so a busy machine does not use it up."""
    steps = []
    try:
        return _read_steps(session, pending, limits, result, deadline_total, student_file, steps)
    finally:
        for step in steps:
            step.close()
        result.charged_seconds += sum(step.charged() for step in steps)


def _next_step(steps, root, seconds):
    """Close the running step's budget and start the next one's."""
    if steps:
        steps[-1].close()
    steps.append(_Budget(root, seconds))
    return steps[-1]


def _read_steps(session, pending, limits, result, deadline_total, student_file, steps):
    """_read_session's loop; steps collects the budgets of the steps it runs."""
    phase, current = "starting", None
    budget = _next_step(steps, session.process.pid, limits.import_seconds)
    deadline = budget.check_at()
    while True:
        now = time.monotonic()
        if now >= deadline_total or result.charged_seconds + sum(s.charged() for s in steps) >= limits.wall_seconds:
            session.kill()
            if current:
                _fail(result, pending, current, f"did not finish: the submission's {limits.wall_seconds} s "
                                                 "of grading time ran out during it")
            elif phase != "imported":
                result.import_error = (f"importing {student_file} did not finish within the grading time "
                                       f"({limits.wall_seconds} s): is there an endless loop at module level?")
                return "import_failed"
            return "out_of_time"
        if now >= deadline:
            why = budget.spent()
            if why is None:                      # slow, not stuck (a busy machine): look again soon
                deadline = now + 0.5
                continue
            session.kill()
            if current:
                _fail(result, pending, current, f"{why} (an endless loop, or waiting for something?)")
                result.notes.append(f"probe {current} stopped: it {why}")
                return "restart"
            result.import_error = (f"importing {student_file} {why}: "
                                   "is there an endless loop, a long computation or training at module level? "
                                   "Put training under `if __name__ == \"__main__\":`.")
            return "import_failed"
        budget.sample()
        events = session.selector.select(timeout=min(deadline, deadline_total, now + SAMPLE_SECONDS) - now)
        for key, _ in events:
            if key.data == "printed":
                chunk = os.read(key.fileobj.fileno(), 1 << 16)
                if chunk:
                    _keep_printed(result, chunk)
                    if result.printed_bytes > MAX_PRINTED:
                        session.kill()
                        message = f"printed more than {MAX_PRINTED >> 20} MB; the grader stopped it"
                        result.notes.append(message)
                        if current:
                            _fail(result, pending, current, message)
                            return "restart"
                        if phase != "imported":
                            result.import_error = f"while being imported, {student_file} {message}"
                            return "import_failed"
                        return "restart"
                else:
                    session.selector.unregister(key.fileobj)
                continue
            chunk = os.read(session.read_fd, 1 << 16)
            if not chunk:                        # the worker ended
                session.selector.unregister(session.read_fd)
                code = session.process.wait()
                how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
                if phase != "imported":
                    result.import_error = (f"the process ended while {student_file} was being imported "
                                           f"({how}): does it call exit() or os._exit() at module level?"
                                           if phase == "ready" else
                                           f"the worker could not start ({how}); see the printed output")
                    return "import_failed"
                if current:
                    _fail(result, pending, current, f"the process ended during this call ({how}): "
                                                    "exit(), os._exit(), a crash, or too much memory?")
                    return "restart"
                return "done" if not pending else "restart"
            session.observation_bytes += len(chunk)
            if session.observation_bytes > limits.observations_bytes:
                session.kill()
                if current:
                    _fail(result, pending, current, "sent too much data back")
                return "restart" if phase == "imported" else _import_fail(result, "sent too much data back")
            session.buffer += chunk
            *lines, session.buffer = session.buffer.split(b"\n")
            for line in lines:
                if not line.startswith(session.prefix):     # not the worker's: never parsed
                    continue
                message = _parse(line[len(session.prefix):])
                if message is None:
                    continue
                event = message.get("event")
                if event == "tampered":
                    session.kill()
                    result.tampered = clean_text(f"{str(message.get('when'))[:80]}, it replaced "
                                                 + ", ".join(str(n)[:60] for n in list(message.get("replaced") or [])[:10]))
                    return "tampered"
                if event == "ready" and phase == "starting":
                    phase = "ready"
                    budget = _next_step(steps, session.process.pid, limits.import_seconds)
                    deadline = budget.check_at()
                elif event == "import_error" and phase == "ready":
                    result.import_error = clean_text(str(message.get("error", "unknown error"))[:600])
                    return "import_failed"
                elif event == "done" and phase == "imported":
                    _drain_printed(session, result)
                    return "done" if not pending else "restart"
                elif event == "imported" and phase == "ready":
                    phase = "imported"
                    budget = _next_step(steps, session.process.pid, limits.probe_seconds)
                    deadline = budget.check_at()
                elif phase == "imported" and message.get("probe") in pending:
                    name = message["probe"]
                    if message.get("status") == "start":
                        current = name
                    elif name == current and isinstance(message.get("ok"), bool):
                        result.observations[name] = {"ok": message["ok"], "value": message.get("value"),
                                                     "error": clean_text(str(message.get("error", ""))[:600])}
                        pending.remove(name)
                        current = None
                    budget = _next_step(steps, session.process.pid, limits.probe_seconds)
                    deadline = budget.check_at()


def _drain_printed(session, result, seconds=1.0):
    """Read what the worker printed and has not been read yet (it flushed before saying done)."""
    stdout = session.process.stdout
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        ready = [key for key, _ in session.selector.select(timeout=0.05) if key.fileobj is stdout]
        if not ready:
            return
        chunk = os.read(stdout.fileno(), 1 << 16)
        if not chunk:
            session.selector.unregister(stdout)
            return
        _keep_printed(result, chunk)


def _import_fail(result, why):
    result.import_error = why
    return "import_failed"


def _fail(result, pending, name, error):
    result.observations[name] = {"ok": False, "value": None, "error": error}
    if name in pending:
        pending.remove(name)


def _parse(line):
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def _keep_printed(result, chunk):
    if result.printed_bytes < KEPT_PRINTED:
        result.printed_head += clean_text(chunk[:KEPT_PRINTED - result.printed_bytes].decode("utf-8", "replace"))
    result.printed_bytes += len(chunk)
    result.printed_tail = (result.printed_tail
                           + clean_text(chunk[-KEPT_PRINTED:].decode("utf-8", "replace")))[-KEPT_PRINTED:]
