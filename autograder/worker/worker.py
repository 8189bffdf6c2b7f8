"""The worker: imports one submission and runs probes on it, in the sandbox.

    python -I worker.py JOB_JSON

JOB_JSON: {"module": path of vae.py, "probes": [names], "seed": int, "fd": observations fd,
"threads": int, "uid": int or null}. The worker writes one JSON object per line to the
observations fd: {"event": "ready"}, {"event": "imported"} or {"event": "import_error", ...},
then per probe {"probe": name, "status": "start"} and {"probe": name, "ok": true, "value": ...}
(or "ok": false, "error": ...), and finally {"event": "done"}. Everything the submission prints
goes to stdout/stderr, which the grader caps. The grader trusts none of it: a missing or
malformed line is a failed observation.
"""

import ctypes
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # -I leaves the script's folder out


class Channel:
    def __init__(self, fd):
        self.fd = fd

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(self.fd, data)
            data = data[written:]


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


def import_submission(path):
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("vae", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["vae"] = module
    spec.loader.exec_module(module)
    return module


def main():
    job = json.loads(sys.argv[1])
    channel = Channel(job["fd"])
    os.environ["OMP_NUM_THREADS"] = str(job["threads"])
    import torch                              # before the submission: its import time is not the student's
    import probes
    torch.set_num_threads(job["threads"])
    drop_privileges(job.get("uid"))
    channel.send({"event": "ready"})

    try:
        module = import_submission(job["module"])
    except BaseException as error:            # SystemExit, KeyboardInterrupt, anything
        channel.send({"event": "import_error", "error": probes.error_text(error)})
        os._exit(0)
    channel.send({"event": "imported"})

    for name in job["probes"]:
        channel.send({"probe": name, "status": "start"})
        try:
            value = probes.PROBES[name](module, job["seed"])
            message = {"probe": name, "ok": True, "value": value}
        except BaseException as error:        # the submission may raise SystemExit inside a call
            message = {"probe": name, "ok": False, "error": probes.error_text(error)}
        try:
            channel.send(message)
        except (TypeError, ValueError) as error:
            channel.send({"probe": name, "ok": False, "error": f"unreadable observation: {error}"})
    channel.send({"event": "done"})
    sys.stdout.flush()
    os._exit(0)                               # no atexit handler or thread of the submission runs on


if __name__ == "__main__":
    main()
