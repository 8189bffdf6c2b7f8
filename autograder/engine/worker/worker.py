"""The worker: imports one submission and runs probes on it, in the sandbox.

    python -I worker.py JOB_JSON

JOB_JSON: {"module": path of the student file, "module_name": the name it is imported as,
"probe_dir": folder of the assignment's probes, "probe_module": its module (which defines PROBES,
name -> function(module, seed), and error_text(exception)), "probes": [names], "seed": int,
"fd": observations fd, "threads": int, "uid": int or null}; the first line of stdin is a one-time token, read before the
submission is imported. The worker writes one JSON object per line, each holding the token, to
the observations fd: {"event": "ready"}, {"event": "imported"} or {"event": "import_error", ...},
then per probe {"probe": name, "status": "start"} and {"probe": name, "ok": true, "value": ...}
(or "ok": false, "error": ...), and finally {"event": "done"}. When the submission replaces a
function the probes rely on, it sends {"event": "tampered", ...} and stops. Everything the
submission prints goes to stdout/stderr, which the grader caps. The grader trusts none of it: a
line without the token, a missing or a malformed line is a failed observation.
"""

import ctypes
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # -I leaves the script's folder out


def make_sender(fd, token):
    """A function that writes one JSON line, after token and a space, to fd. It holds its own
    references to os.write and json.dumps, so a submission that replaces those later does not
    change what is sent."""
    write, dumps = os.write, json.dumps
    prefix = token + " "

    def send(message):
        data = (prefix + dumps(message) + "\n").encode()
        while data:
            data = data[write(fd, data):]
    return send


def probe_modules(probe_dir):
    """The modules loaded from the assignment's probe folder (the probes and their helpers)."""
    folder = os.path.realpath(probe_dir)
    return [module for module in list(sys.modules.values())
            if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(folder + os.sep)]


def watched_functions(probe_dir, probe_module):
    """The functions the probes and this worker rely on, by name: those of the probe folder's
    modules, and the parts of torch, json, base64, os and builtins they call. A submission that
    replaces one of them could make a probe report what it did not observe."""
    import base64
    import builtins

    import torch
    probes = sys.modules[probe_module]
    watched = {f"{module.__name__}.{name}": value for module in probe_modules(probe_dir)
               for name, value in vars(module).items() if callable(value)}
    watched.update({f"PROBES[{name}]": function for name, function in probes.PROBES.items()})
    watched["probes.PROBES"] = probes.PROBES
    for owner, names in ((torch.nn.Module, ("__call__", "_call_impl", "register_forward_hook", "modules",
                                            "parameters", "__setattr__", "__getattr__")),
                         (torch.nn.Linear, ("forward",)),
                         (torch.Tensor, ("detach", "to", "numpy", "contiguous", "reshape", "min", "max")),
                         (builtins, ("isinstance", "type", "len", "float", "int", "str", "repr", "list", "dict")),
                         (json, ("dumps",)), (base64, ("b64encode",)), (os, ("write", "_exit"))):
        for name in names:
            watched[f"{getattr(owner, '__name__', owner)}.{name}"] = getattr(owner, name, None)
    return watched


def make_tamper_check(probe_dir, probe_module):
    """A function listing the watched functions that were replaced since it was made."""
    before = watched_functions(probe_dir, probe_module)
    codes = {name: getattr(value, "__code__", None) for name, value in before.items()}

    def replaced():
        now = watched_functions(probe_dir, probe_module)
        return sorted(name for name, value in before.items()
                      if now.get(name) is not value or getattr(now.get(name), "__code__", None) is not codes[name])
    return replaced


REFUSED_EVENTS = ("sys._current_frames", "sys._current_exceptions", "sys.settrace", "sys.setprofile",
                  "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.remote_exec")
FRAME_ATTRIBUTES = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")


def code_objects(functions):
    """The code objects of functions and of every function defined inside them."""
    found, stack = set(), [getattr(getattr(f, "__func__", f), "__code__", None) for f in functions]
    while stack:
        code = stack.pop()
        if code is not None and hasattr(code, "co_consts") and id(code) not in found:
            found.add(id(code))
            stack.extend(c for c in code.co_consts if hasattr(c, "co_consts"))
    return found


def install_audit_hook(trusted_functions):
    """Refuse, from here on, what reaches the worker's state from submitted code: frames (through
    a traceback, a generator, sys._getframe when it would return the worker's own frames), the garbage collector's lists, tracing, ctypes.
    Frames stay available to trusted_functions' own code (the probes' error messages walk a
    traceback) and to the traceback module when called by it. A refused call raises ValueError,
    which the standard library treats as "no frame here" (namedtuple, typing, logging go on)."""
    import traceback
    trusted = code_objects(trusted_functions)
    helpers = code_objects([v for m in (traceback, linecache_module()) for v in vars(m).values()
                            if callable(v)] + [v for cls in (traceback.StackSummary, traceback.FrameSummary,
                                               traceback.TracebackException) for v in vars(cls).values()])
    inside, getframe, get_ident = set(), sys._getframe, __import__("_thread").get_ident

    def called_by_trusted():
        thread = get_ident()
        if thread in inside:
            return True                      # our own look at the stack below
        inside.add(thread)
        try:
            frame = getframe(2)              # 0: here, 1: the hook, 2: the code that raised the event
            for _ in range(12):
                if frame is None:
                    return False
                code = id(frame.f_code)
                if code in trusted:
                    return True
                if code not in helpers:
                    return False
                frame = frame.f_back
            return False
        finally:
            inside.discard(thread)

    def hook(event, args):
        if get_ident() in inside:
            return
        if event in REFUSED_EVENTS or event.startswith("ctypes.") or (
                event == "sys._getframe" and args and id(getattr(args[0], "f_code", None)) in trusted
                and not called_by_trusted()) or (
                event == "object.__getattr__" and len(args) > 1 and args[1] in FRAME_ATTRIBUTES
                and not called_by_trusted()):
            raise ValueError(f"the grader does not allow {event} in submitted code")
    sys.addaudithook(hook)


def linecache_module():
    import linecache
    return linecache


def drop_privileges(uid):
    """As root inside the sandbox: become an unprivileged uid that can never regain privileges."""
    if uid is None or os.getuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NO_NEW_PRIVS = 38
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def in_fresh_thread(function, args, error_text):
    """function(*args) on a thread of its own: ("ok", value) or ("error", its error_text). Submitted
    code called there finds, walking back its frames, only this call: never the worker's main
    frame, which holds the writer and the table of probes. The error's text is made on that
    thread too (its __str__ is submitted code)."""
    import threading
    box = []

    def run():
        try:
            box.append(("ok", function(*args)))
        except BaseException as error:        # SystemExit, KeyboardInterrupt, anything
            try:
                box.append(("error", error_text(error)))
            except BaseException:
                box.append(("error", f"{type(error).__name__} (unprintable)"))
    thread = threading.Thread(target=run, name="submission", daemon=True)
    thread.start()
    thread.join()
    if len(box) != 1:
        return "error", "the call's result was tampered with"
    return box[0]


def import_submission(path, name):
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _thread_count():
    import _thread
    return _thread._count()


def main():
    job = json.loads(sys.argv[1])
    token = sys.stdin.readline().strip()      # the grader's one-time token, gone before the import
    empty = os.open(os.devnull, os.O_RDONLY)
    os.dup2(empty, 0)
    os.close(empty)
    send = make_sender(job["fd"], token)
    del token
    os.environ["OMP_NUM_THREADS"] = str(job["threads"])
    import torch                              # before the submission: its import time is not the student's
    import torchvision  # noqa: F401           (it rewraps some torch functions when imported)
    sys.path.insert(0, job["probe_dir"])
    probes = importlib.import_module(job["probe_module"])
    torch.set_num_threads(job["threads"])
    drop_privileges(job.get("uid"))
    probe_functions, error_text, exit_now = dict(probes.PROBES), probes.error_text, os._exit
    tampered = make_tamper_check(job["probe_dir"], job["probe_module"])
    student_file = os.path.basename(job["module"])
    import linecache  # noqa: F401             (loaded before the hook, never by submitted code)
    install_audit_hook([main, make_tamper_check, watched_functions, probe_modules, make_sender, in_fresh_thread,
                        *[v for m in probe_modules(job["probe_dir"]) for v in vars(m).values() if callable(v)]])
    send({"event": "ready"})

    threads = _thread_count()
    outcome, module = in_fresh_thread(import_submission, (job["module"], job["module_name"]), error_text)
    if outcome == "error":
        send({"event": "import_error", "error": module})
        exit_now(0)
    if tampered():
        send({"event": "tampered", "replaced": tampered()[:20], "when": f"while {student_file} was imported"})
        exit_now(0)
    send({"event": "imported"})

    for name in job["probes"]:
        send({"probe": name, "status": "start"})
        outcome, value = in_fresh_thread(probe_functions[name], (module, job["seed"]), error_text)
        message = ({"probe": name, "ok": True, "value": value} if outcome == "ok" else
                   {"probe": name, "ok": False, "error": value})
        if _thread_count() > threads:          # a thread of the submission could have changed the value
            message = {"probe": name, "ok": False, "error": (
                "the submission left a thread running (threading or _thread), so this observation cannot be "
                "trusted: start no threads in vae.py, or join them before returning")}
        if tampered():
            send({"event": "tampered", "replaced": tampered()[:20], "when": f"during the probe {name}"})
            exit_now(0)
        try:
            send(message)
        except (TypeError, ValueError) as error:
            send({"probe": name, "ok": False, "error": f"unreadable observation: {error}"})
    send({"event": "done"})
    sys.stdout.flush()
    exit_now(0)                               # no atexit handler or thread of the submission runs on


if __name__ == "__main__":
    main()
