"""The course in one place: assignments, tasks and points, seeds, tolerances, sandbox limits, paths.

Every other part of the kit (release, grader, reference runs, nbgrader, the tests) reads its
course facts from here. Change a number here and nowhere else.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# nbgrader's course directory names (CourseDirectory.source_directory, ...).
SOURCE_DIR = "assignments"      # the single source, solutions marked
RELEASE_DIR = "release"         # the student release, generated and committed
SOLUTIONS_DIR = "solutions"     # what the reference solution produces
COMMON_DIR = ROOT / SOURCE_DIR / "common"   # given helper modules, released beside the student file

# The real MNIST test split, outside the project (never committed); tests skip where absent.
SHARED_DATA_DIR = Path(os.environ.get("VAEKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
# Generated, never committed: reference probe observations, nbgrader's database, scratch.
CACHE_DIR = Path(os.environ.get("VAEKIT_CACHE", ROOT / ".cache"))


@dataclass(frozen=True)
class Task:
    """One graded task. points = auto_points (hidden tests, result files) + manual points."""
    id: str
    title: str
    points: int
    auto_points: int
    manual: str = ""            # what a person grades, with the rubric's headline
    bonus: bool = False

    @property
    def manual_points(self):
        return self.points - self.auto_points


@dataclass(frozen=True)
class Run:
    """A training run whose results folder students submit and the reference produces."""
    task: str                   # the task whose result files these are
    autoencoder_type: str
    dataset: str = "mnist"
    hidden_layer_size: int = 512
    lr: float = 0.001
    n_epochs: int = 100
    n_dims_code: int = 2
    variant: str = ""           # free-form: what tells runs of one task apart (a likelihood, a latent size)
    patience: int = None        # early stopping after this many epochs without improvement (n_epochs: the most)
    folder_name: str = None     # the results folder, for a student file that names it otherwise

    @property
    def folder(self):
        """The results folder name, exactly as vae.py's results_dir_name writes it."""
        if self.folder_name:
            return self.folder_name
        name = f"AE-arch={self.autoencoder_type}({self.hidden_layer_size})-lr={self.lr}-ep={self.n_epochs}"
        if self.patience is not None:
            name += f"-es={self.patience}"
        return name if self.dataset == "mnist" else f"{name}-data={self.dataset}"

    def argv(self, n_epochs=None, dataset=None):
        """vae.py's command line for this run."""
        return ["--autoencoder_type", self.autoencoder_type, "--n_epochs", str(n_epochs or self.n_epochs),
                "--dataset", dataset or self.dataset, "--hidden_layer_size", str(self.hidden_layer_size),
                "--lr", str(self.lr), "--n_dims_code", str(self.n_dims_code)]


@dataclass(frozen=True)
class ImageGrid:
    """An image file the given code writes with torchvision's save_image(nrow=ncols, padding)."""
    nrows: int
    ncols: int

    def size(self, side, padding=2):
        """(width, height) in pixels of the grid of side x side images."""
        return (self.ncols * (side + padding) + padding, self.nrows * (side + padding) + padding)


@dataclass(frozen=True)
class Sandbox:
    """Limits on one submission's worker process (and everything it starts)."""
    memory_bytes: int = 4 << 30          # address space
    cpu_seconds: int = 600
    max_processes: int = 64
    file_size_bytes: int = 64 << 20
    output_bytes: int = 1 << 20          # what the worker may print that the grader keeps
    observations_bytes: int = 32 << 20   # what the worker may send back as observations
    wall_seconds: int = 300              # per submission, all probes together
    probe_seconds: int = 20              # per probe, past the import
    import_seconds: int = 60             # importing the submission (torch included)
    torch_threads: int = 1


@dataclass(frozen=True)
class Tolerances:
    """How close an observation must be to the value it is judged against."""
    rtol: float = 1e-4
    atol: float = 1e-5
    band_sigmas: float = 3.0             # band = mean +- (band_sigmas * std + band_relative * |mean|)
    band_relative: float = 0.10          # reference trained on MNIST's standard 60,000/10,000 split
    band_relative_nonstandard: float = 0.25   # reference trained on other data: students' runs differ more


@dataclass(frozen=True)
class Seeds:
    train: int = 8675309                 # vae.py's --seed default
    probe_sets: int = 8                  # secret seeds of the probes' inputs and weights, drawn per kit (one per grading)
    celeba_subset: int = 0               # celeba_subset's default seed
    split: int = 0                       # mnist-test-split's seeded shuffle
    reference: tuple = (8675309, 1, 2)   # seeds of the reference runs behind the tolerance bands


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    tasks: tuple
    runs: tuple
    student_file: str = "vae.py"         # the file the hidden tests exercise (imported under its stem)
    grader_dir: Path = None              # its grading folder; None: autograder/graders/<name>/
    root: Path = ROOT                    # the course folder holding assignments/, release/, solutions/
    # Python that fetches, into the folder {data}, what the result-file evidence reads of the course's
    # data (Gradescope's setup.sh runs it; here the data is SHARED_DATA_DIR)
    evidence_data_fetch: str = ("import torchvision; "
                                "torchvision.datasets.MNIST({data!r}, train=False, download=True)")
    helpers: tuple = ("kit_data.py",)    # given modules of assignments/common/ the student file imports;
                                         # the grader supplies the kit's copies, never the student's
    notebook: str = "vae.ipynb"
    handout: str = "HANDOUT.md"
    public_checks: str = "check_vae.py"
    image_side: dict = field(default_factory=dict)     # dataset -> side of one image in pixels
    reconstruction: ImageGrid = ImageGrid(2, 8)        # 8 test images over their reconstructions
    samples: ImageGrid = ImageGrid(8, 8)               # 64 draws from the prior
    manifold: ImageGrid = ImageGrid(20, 20)            # _set_latent_vectors' default grid
    sandbox: Sandbox = Sandbox()
    tolerances: Tolerances = Tolerances()
    seeds: Seeds = Seeds()

    @property
    def source_dir(self):
        return self.root / SOURCE_DIR / self.name

    @property
    def release_dir(self):
        return self.root / RELEASE_DIR / self.name

    @property
    def solutions_dir(self):
        return self.root / SOLUTIONS_DIR / self.name

    @property
    def reference_file(self):
        return self.source_dir / self.student_file

    @property
    def helper_paths(self):
        return [COMMON_DIR / name for name in self.helpers]

    def task(self, task_id):
        return next(t for t in self.tasks if t.id == task_id)

    def run(self, task_id):
        return next(r for r in self.runs if r.task == task_id)

    @property
    def max_score(self):
        """Points of the required tasks (the bonus comes on top)."""
        return sum(t.points for t in self.tasks if not t.bonus)


VAE = Assignment(
    name="vae",
    title="From autoencoders to variational autoencoders",
    tasks=(
        Task("A.1", "Autoencoder architecture", 20, 20),
        Task("A.2", "Autoencoder training and loss curves", 10, 5,
             manual="the student's own plot of the AE's train and test loss per epoch from perf_metrics.csv "
                    "(plot_losses in the notebook), axes labelled, legend (5)"),
        Task("B.1", "Deriving the ELBO estimator", 25, 0,
             manual="the derivation in the notebook: the ELBO as a bound (5), the Gaussian KL from the given "
                    "formula or the definition (6), the L-sample Monte Carlo term and the reparameterisation (4), "
                    "the Bernoulli likelihood as the BCE, the AE's loss (6), the diagonal case (4)"),
        Task("B.2", "Variational autoencoder", 25, 20,
             manual="written comments: the VAE's loss curves described (2), its reconstructions and samples "
                    "compared with the AE's (3)"),
        Task("C", "The latent space", 20, 8,
             manual="what _set_latent_vectors returns and its grid's orientation (4); AE and VAE latent spaces "
                    "compared on the student's own figures (4); prior samples compared and explained (4)"),
        Task("bonus", "A VAE on CelebA faces", 20, 8, bonus=True,
             manual="extra credit: face samples and loss curves shown (4), described (4), explained (4)"),
    ),
    runs=(
        Run("A.2", "ae"),
        Run("B.2", "vae"),
        Run("bonus", "vae", dataset="celeba"),
    ),
    image_side={"mnist": 28, "mnist-test-split": 28, "synthetic-digits": 28, "celeba": 64},
)

ASSIGNMENTS = {VAE.name: VAE}


def get_assignment(name):
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise SystemExit(f"error: no assignment {name!r} in course_config.py; "
                         f"known: {', '.join(ASSIGNMENTS)}") from None


def configure_nbgrader(c, root=ROOT, db_dir=None):
    """Fill an nbgrader (traitlets) config c for this course; nbgrader_config.py calls this.

    nbgrader handles the notebooks only. The kit itself releases every other file (it strips
    the .py solutions), so nbgrader is told to ignore them and can never copy a solution .py
    into the release, nor overwrite a student's .py when grading.
    """
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.source_directory = SOURCE_DIR
    c.CourseDirectory.release_directory = RELEASE_DIR
    c.CourseDirectory.solution_directory = SOLUTIONS_DIR
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*",
                                "*.py", "*.md", "results", "data"]
    db_dir = Path(db_dir or CACHE_DIR)
    db_dir.mkdir(parents=True, exist_ok=True)
    c.CourseDirectory.db_url = f"sqlite:///{db_dir / 'gradebook.db'}"
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    return c
