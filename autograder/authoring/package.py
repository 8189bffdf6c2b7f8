"""Build the Gradescope autograder zip: setup.sh, run_autograder and the kit's grader.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when it builds the image,
then run_autograder for every submission (the submission in /autograder/submission, the results
expected in /autograder/results/results.json). The zip holds the engine and this assignment's grader
folder (probes, hidden tests, the math they judge with; not its selfcheck catalog), the kit's
helper modules, the reference's metrics (the loss bands) and, for each of the kit's secret probe
sets, its seed and the reference's observations with it, made here on the instructor's machine
(reference_data/NAME.json); never the reference solution's
source, nothing of authoring/ or qa/, nothing of the student release. setup.sh makes the source
folder root's alone (0700): the worker's unprivileged uid cannot read the observations.
"""

import json
import shlex
import zipfile
from pathlib import Path

from .. import KIT_ROOT, graders

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv bubblewrap
cd /autograder/source
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir torch torchvision --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install --no-cache-dir -r requirements.txt
# The data the result-file evidence reads (the final test loss recomputed from model.pt): without
# it, that one check is skipped with a note.
/autograder/venv/bin/python -c {fetch} || echo "warning: the evidence data could not be fetched"
chmod -R go+rX /autograder/data 2>/dev/null || true
# The grader (hidden tests, the reference's observations) is root's alone; the worker runs as an
# unprivileged uid that reaches only the Python in /autograder/venv (0755 under a 0711 /autograder).
chown -R root:root /autograder/source
chmod -R go-rwx /autograder/source
chmod 0711 /autograder
chmod -R go+rX /autograder/venv
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
cd /autograder/source
export VAEKIT_SHARED_DATA=/autograder/data
exec /autograder/venv/bin/python -m autograder grade {name} /autograder/submission --out /autograder/results
"""


def package_files(assignment):
    """(path in the zip, path on disk) of the kit files the grader needs."""
    files = [("course_config.py", KIT_ROOT / "course_config.py"), ("requirements.txt", KIT_ROOT / "requirements.txt")]
    package = KIT_ROOT / "autograder"
    wanted = [package / "__init__.py", package / "__main__.py", *sorted((package / "engine").rglob("*")),
              package / "graders" / "__init__.py", *sorted(graders.folder(assignment).rglob("*"))]
    for path in wanted:
        relative = path.relative_to(package)
        if (path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".ini")
                and "catalog" not in relative.parts):          # the selfcheck's entries: the kit's own checks
            files.append((str(path.relative_to(KIT_ROOT)), path))
    for path in assignment.helper_paths:    # never the reference solution: its observations are shipped instead
        files.append((str(path.relative_to(KIT_ROOT)), path))
    metrics = assignment.solutions_dir / "metrics.json"
    if metrics.is_file():
        files.append((str(metrics.relative_to(KIT_ROOT)), metrics))
    return files


def build_gradescope_zip(assignment, out_path):
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            fetch = shlex.quote(assignment.evidence_data_fetch.format(data="/autograder/data"))
            zipped.writestr(info, text.format(name=assignment.name, fetch=fetch))
        for name, path in package_files(assignment):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16
            zipped.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo(shipped_observations_name(assignment), date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o600 << 16
        zipped.writestr(info, json.dumps(reference_observation_data(assignment)), zipfile.ZIP_DEFLATED)
    return out_path


def shipped_observations_name(assignment):
    from ..engine.grade import shipped_observations
    return str(shipped_observations(assignment).relative_to(KIT_ROOT))


def reference_observation_data(assignment):
    """Every secret probe set's seed and the probes' observations of the reference solution with it,
    made here (where its source is)."""
    from ..engine.grade import all_reference_observations, probe_seeds
    return {"probe_sets": [{"seed": seed, "observations": observed.worker_result.observations}
                           for seed, observed in zip(probe_seeds(assignment), all_reference_observations(assignment))]}
