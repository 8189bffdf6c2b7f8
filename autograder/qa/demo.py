"""The kit's main job on its embedded default (what `make demo` runs).

1. Regenerate the student release from the single source.
2. Train the reference AE and VAE for a few epochs: on full MNIST where ./data holds it, else on
   MNIST's test split where it is found (./data or ../shared/data), else on the generated digits
   (which are not MNIST, and are named so).
3. Print where every figure is.
4. Grade the reference solution and the untouched release, and print a per-task score table.
"""

import shutil
import time
from pathlib import Path

import course_config
from .. import KIT_ROOT
from ..authoring.reference import choose_dataset, describe_data, load_reference_module
from ..authoring.release import release


def run_demo(assignment, epochs=3, data_dir="./data", out_dir=None):
    out_dir = Path(out_dir or KIT_ROOT / "build" / "demo")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    started = time.perf_counter()
    release(assignment)
    in_sync = not release(assignment, check=True)
    print(f"1. Released {course_config.SOURCE_DIR}/{assignment.name} into {assignment.release_dir} "
          f"({'in sync' if in_sync else 'OUT OF SYNC'}).")

    module = load_reference_module(assignment)
    dataset, data_dir = choose_dataset(module, "auto", Path(data_dir))
    data = describe_data(module, dataset, data_dir, assignment)
    print(f"2. Training the reference AE and VAE for {epochs} epochs on {data['name']}: {data['split']}.")
    folders = []
    for run in assignment.runs:
        if run.dataset != "mnist":
            continue
        argv = run.argv(n_epochs=epochs, dataset=dataset) + ["--data_dir", str(data_dir),
                                                             "--results_dir", str(out_dir / "results")]
        folders.append(module.main(argv))

    print("3. Figures:")
    for folder in folders:
        print(f"   {folder}/")
        for name in ("loss_curves.png", f"reconstruction_{epochs - 1}.png", f"sample_{epochs - 1}.png",
                     "manifold_digits.png", "manifold.png"):
            print(f"      {name}")
    print("   (and reconstruction_e.png, sample_e.png for every epoch e, perf_metrics.csv, model.pt)")

    print("4. Grading the reference solution and the untouched release:")
    scores = grade_pair(assignment, out_dir / "grading")
    print(score_table(assignment, scores))
    print(f"Done in {time.perf_counter() - started:.0f} s. Feedback: {out_dir / 'grading'}/*/feedback.md")
    return scores


def grade_pair(assignment, out_dir):
    """Grade the reference (code + committed reference results) and the blank release."""
    from ..engine.grade import grade_to, make_reference_submission, task_scores
    submissions = out_dir / "submissions"
    make_reference_submission(assignment, submissions / "reference")
    shutil.copytree(assignment.release_dir, submissions / "release")
    return {name: task_scores(grade_to(assignment, submissions / name, out_dir / name))
            for name in ("reference", "release")}


def score_table(assignment, scores):
    names = list(scores)
    lines = ["   task    auto  " + "  ".join(f"{n:>9}" for n in names), "   " + "-" * (16 + 11 * len(names))]
    for task in assignment.tasks:
        if task.auto_points:
            cells = "  ".join(f"{scores[n].get(task.id, 0):>9}" for n in names)
            lines.append(f"   {task.id + (' *' if task.bonus else ''):<7} {task.auto_points:>4}  {cells}")
    total = sum(t.auto_points for t in assignment.tasks)
    lines.append(f"   {'total':<7} {total:>4}  " + "  ".join(f"{sum(scores[n].values()):>9}" for n in names))
    lines.append("   * bonus. Manually graded parts are not included. The bonus result files need a real "
                 "CelebA run, so the reference has none here.")
    return "\n".join(lines)
