"""The selfcheck's catalog: submissions with known scores, to test the grader itself.

Every entry is a small recipe for a submission folder (vae.py + results/ + vae.ipynb) and what
it must score per task. Code is written as text edits of the reference solution (or of the
student release), each asserted to apply exactly once, so the catalog follows the reference when
it changes and fails loudly when an edit no longer fits. The kinds:

    reference   the single source's vae.py with the reference results: every autograded point
    blank       the untouched student release: no point
    variant     a correct solution written differently from the reference: the reference's score
    mutant      the reference with one plausible mistake: loses points in the task(s) it names
    hostile     code that attacks the grader: earns nothing beyond what its honest code earns
    malformed   broken or misplaced files: a clear message and a score for what could be graded

Expectations, per task id (a task an entry does not name must score the same as the reference):

    "same"      the reference's score in this task
    "lose"      strictly fewer points than the reference
    "files"     exactly the points of the task's result-file tests (those judging results/ alone):
                what a submission earns whose code earns nothing but whose results are the reference's
    "code"      exactly the points of the task's other tests (the task's autograded points less
                "files"): what the reference's code earns without its results
    an int      exactly this many points
    "max"       every autograded point of the task

An entry's results/ is a copy of the reference results (what the grader reads of them) changed
by the operations of autograder/qa/catalog/results.py; None means no results/ folder at all.
The catalog of an assignment lives in autograder/graders/<assignment name>/catalog/ (ENTRIES); the grader
never sees it: `python -m autograder selfcheck` builds each entry and grades it as any submission.
"""

import dataclasses
import shutil
from pathlib import Path

from autograder import graders

KINDS = ("reference", "blank", "variant", "mutant", "hostile", "malformed")
EXPECTATIONS = ("same", "lose", "files", "code", "max")


class CatalogError(Exception):
    """An entry cannot be built as written (an edit that no longer applies exactly once, ...)."""


@dataclasses.dataclass(frozen=True)
class Edit:
    """Replace the text old, which must occur exactly once, by new."""
    old: str
    new: str


def after(anchor, text):
    """An Edit that inserts text right after anchor (which must occur exactly once)."""
    return Edit(anchor, anchor + text)


@dataclasses.dataclass(frozen=True)
class Context:
    """What an entry may need to know about this selfcheck run; "@@NAME@@" in an edit is replaced
    by the field's value (e.g. @@PORT@@, the loopback port that no submission may reach)."""
    port: int = 0
    kit_root: str = ""
    batch_out: str = ""          # the output folder of the batch the hostile batch entries run in
    marker: str = "VAEKIT-SELFCHECK-FORGED"    # hostile entries write this into every file they forge

    def fill(self, text):
        for field in dataclasses.fields(self):
            text = text.replace(f"@@{field.name.upper()}@@", str(getattr(self, field.name)))
        return text


@dataclasses.dataclass(frozen=True)
class Code:
    """The submission's vae.py: base ("reference": the single source's, "release": the student's
    stub) with edits applied, then an optional transform of the final bytes; saved as filename."""
    base: str = "reference"
    edits: tuple = ()
    transform: object = None      # bytes -> bytes (BOM, CRLF, garbage, ...)
    filename: str = None          # default: the assignment's student file (vae.py)

    def text(self, assignment, context, where):
        base = {"reference": assignment.reference_file,
                "release": assignment.release_dir / assignment.student_file}[self.base]
        text = base.read_text(encoding="utf-8")
        for edit in self.edits:
            count = text.count(edit.old)
            if count != 1:
                raise CatalogError(f"{where}: the edit of {edit.old.strip()[:70]!r} matches the {self.base} "
                                   f"{count} times instead of once; update the catalog to the {self.base}")
            text = text.replace(edit.old, context.fill(edit.new))
        return text

    def write(self, assignment, context, folder, where):
        data = self.text(assignment, context, where).encode("utf-8")
        if self.transform is not None:
            data = self.transform(data)
        (folder / (self.filename or assignment.student_file)).write_bytes(data)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One submission of the catalog: how to build it and what it must score per task."""
    name: str
    kind: str
    does: str                          # one line: what the submission does
    expect: dict                       # task id -> expectation (see the module's docstring)
    code: Code = Code()                # None: no vae.py at all
    results: tuple = ()                # operations on a copy of the reference results; None: no results/
    notebook: object = "release"       # "release", "source", None (no notebook) or the file's bytes
    folder: str = ""                   # put the whole submission inside this subfolder
    feedback: tuple = ()               # phrases that feedback.md must contain
    batch: bool = False                # grade it in a real batch beside an honest submission

    def expectation(self, task_id):
        return self.expect.get(task_id, "same")


def loses(*task_ids):
    """Expectations of a mutant: it loses points in these tasks and only there."""
    return {task_id: "lose" for task_id in task_ids}


def entries_for(assignment):
    """The catalog of an assignment, checked for consistency."""
    module = graders.catalog(assignment)
    entries = list(module.ENTRIES)
    check_catalog(entries, assignment)
    return entries


def check_catalog(entries, assignment):
    """Names unique, kinds known, expectations well-formed, mutants naming what they lose."""
    task_ids = {t.id for t in assignment.tasks if t.auto_points}
    seen = set()
    for entry in entries:
        where = f"catalog entry {entry.name!r}"
        if entry.name in seen:
            raise CatalogError(f"{where}: the name is used twice")
        seen.add(entry.name)
        if entry.kind not in KINDS:
            raise CatalogError(f"{where}: unknown kind {entry.kind!r}")
        for task_id, expected in entry.expect.items():
            if task_id not in task_ids:
                raise CatalogError(f"{where}: no autograded task {task_id!r}")
            if not (isinstance(expected, int) or expected in EXPECTATIONS):
                raise CatalogError(f"{where}: unknown expectation {expected!r} for {task_id}")
        if entry.kind == "mutant" and "lose" not in entry.expect.values():
            raise CatalogError(f"{where}: a mutant must name the task(s) it loses")
    for kind in ("reference", "blank"):
        if sum(e.kind == kind for e in entries) != 1:
            raise CatalogError(f"the catalog needs exactly one {kind} entry")


# --- building a submission folder -------------------------------------------------------------

def build(entry, assignment, context, reference_results, target):
    """Write entry's submission into the (new, empty) folder target; returns target."""
    folder = Path(target) / entry.folder if entry.folder else Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    where = f"catalog entry {entry.name!r}"
    if entry.code is not None:
        entry.code.write(assignment, context, folder, where)
    if entry.results is not None:
        shutil.copytree(reference_results, folder / "results")
        for operation in entry.results:
            operation(folder / "results", assignment)
    if entry.notebook is not None:
        source = {"release": assignment.release_dir, "source": assignment.source_dir}
        if isinstance(entry.notebook, bytes):
            (folder / assignment.notebook).write_bytes(entry.notebook)
        else:
            shutil.copyfile(source[entry.notebook] / assignment.notebook, folder / assignment.notebook)
    return Path(target)
