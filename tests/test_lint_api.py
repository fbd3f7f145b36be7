"""Tests for trainbook.lint's first-party API check (TB242 names, TB243 calls, TB244 attributes) and its
static package model (lint/package.py, lint/classes.py), against tests/lint_fixtures/fakepkg.

The fake package is read from source with --package; FAKE_CELLS is a notebook that uses it the way
it is written (zero findings), and each failing fixture adds one cell that drifted from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainbook import lint
from trainbook.lint import PackageModel

from test_lint import notebook as stored_notebook  # tests/ is on sys.path under pytest

REPO = Path(__file__).resolve().parents[1]
FAKEPKG = REPO / "tests" / "lint_fixtures" / "fakepkg"
TITLE = """# Demo

[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/acme/demo/blob/main/nb.ipynb)"""
PARAMS = """epochs = 2  # @param {type:"integer"}
learning_rate = 0.001  # @param {type:"number"}
helpers_ref = "v0.3.0"  # @param {type:"string"}"""
SETUP = """import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    %pip install -q "fakepkg @ git+https://github.com/acme/demo@{helpers_ref}#subdirectory=helpers"

import fakepkg as fp
from fakepkg import report
from fakepkg.data import Batch, RemoteTable, UniversalDataModule
from fakepkg.training import training_loop"""
CONFIG = """config = (
    fp.TrainingConfigBuilder.preset("quick")
    .with_run(output_dir="runs", run_name="demo", seed=0)
    .with_training(epochs=epochs, learning_rate=learning_rate, warmup_ratio=0.1)
    .with_tags("demo")
    .with_extra(batch_size=8)
    .build()
)
config.save(config.run_dir / "config.json")
print(config.summary(), config.FORMAT, fp.TrainingConfig.FORMAT, fp.TrainingConfig.load("c.json").epochs)"""
TRAIN = """spec = fp.TaskSpec.preset("lm")
data = UniversalDataModule("corpus.txt", batch_size=config.batch_size)
trainer = fp.Trainer(object(), config, spec, seed=0)
result = trainer.train(data.train_loader())
print(result.summary(), result.best_metric, trainer.history, trainer.last_data, spec.max_length, spec.is_text)
report.plot_curves(result, title="loss", color="red", linewidth=2)
steps = training_loop(None, [], steps=3)
batch = Batch([1], [0])
print(batch.weight, batch._asdict(), fp.Trainer.describe(config), trainer.describe(config))"""
FAKE_CELLS = [("markdown", TITLE), ("parameters", PARAMS), ("code", SETUP), ("code", CONFIG), ("code", TRAIN)]


def notebook(cells) -> dict:
    """test_lint's stored notebook, from (kind, source) pairs (ids cell-0, cell-1, ...)."""
    return stored_notebook([(kind, f"cell-{i}", source) for i, (kind, source) in enumerate(cells)])


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    """Lint a notebook in a fake repository: (exit code, finding lines without the path)."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)

    def go(cells, *args, package=FAKEPKG):
        (tmp_path / "nb.ipynb").write_text(json.dumps(notebook(cells)))
        code = lint.main(["nb.ipynb", *(["--package", str(package)] if package else []), *args])
        return code, [line.removeprefix("nb.ipynb:") for line in capsys.readouterr().out.splitlines()[:-1]]

    return go


def copy_fakepkg(tmp_path) -> Path:
    shutil.copytree(FAKEPKG, tmp_path / "pkg" / "fakepkg")
    return tmp_path / "pkg" / "fakepkg"


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_notebook_that_matches_the_package_is_clean(run):
    assert run(FAKE_CELLS) == (0, [])


def test_dropping_one_keyword_from_the_package_gives_exactly_that_finding(run, tmp_path):
    package = copy_fakepkg(tmp_path)
    edit(package / "builder.py", ", warmup_ratio: float | None = None)", ")")
    edit(package / "builder.py", ",\n                             warmup_ratio=warmup_ratio)", ")")
    assert run(FAKE_CELLS, package=package) == (1, [
        "cell 4:line 4: TB243 TrainingConfigBuilder.with_training() got an unexpected keyword argument "
        "'warmup_ratio' (TrainingConfigBuilder.with_training is at fakepkg/builder.py:24)"])


def test_the_package_is_read_not_imported(run, tmp_path):
    package = copy_fakepkg(tmp_path)
    (package / "__init__.py").write_text((package / "__init__.py").read_text()
                                         + '\nraise RuntimeError("fakepkg was imported")\n')
    (package / "config.py").write_text((package / "config.py").read_text() + '\nraise SystemExit("config ran")\n')
    assert run(FAKE_CELLS, package=package) == (0, [])
    assert "fakepkg" not in sys.modules


def test_linting_our_notebooks_imports_none_of_trainbooks_modules():
    code = ("import sys\nfrom trainbook.lint import main\nassert main(['notebooks']) == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith('trainbook.') and not m.startswith('trainbook.lint')),"
            " 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[] False"


def test_packages_from_pyproject_are_relative_to_it(run, tmp_path):
    copy_fakepkg(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\npackages = ["pkg/fakepkg"]\n')
    assert run(FAKE_CELLS, package=None) == (0, [])
    assert run(FAKE_CELLS + [("code", "fp.Trainr")], package=None) == (1, [
        "cell 6:line 1: TB242 fp.Trainr: fakepkg has no name 'Trainr'; did you mean 'Trainer'?"])


@pytest.mark.parametrize("source, message", [
    # the five kinds of drift the issue lists, rewritten for fakepkg
    ("from fakepkg.training.engine import training_loop",
     "TB242 from fakepkg.training.engine import training_loop: module fakepkg.training.engine does not exist; "
     "training_loop is defined in fakepkg.training.loop"),
    ("from fakepkg.tokenization.data_module import UniversalDataModule",
     "TB242 from fakepkg.tokenization.data_module import UniversalDataModule: fakepkg.tokenization.data_module has "
     "no name 'UniversalDataModule'; UniversalDataModule is defined in fakepkg.data.universal"),
    ('cfg = fp.TrainingConfig(output_dir="runs", log_dir="logs")',
     "TB243 TrainingConfig() got an unexpected keyword argument 'log_dir' (TrainingConfig is at fakepkg/config.py:12)"),
    ("fp.TrainingConfigBuilder.from_config(config).with_training(warmup_ratio=0.1)",
     "TB244 fp.TrainingConfigBuilder.from_config: class TrainingConfigBuilder has no attribute 'from_config' "
     "(TrainingConfigBuilder is at fakepkg/builder.py:13)"),
    ('fp.TrainingConfigBuilder.preset("quick").with_training(warmup_steps=100)',
     "TB243 TrainingConfigBuilder.with_training() got an unexpected keyword argument 'warmup_steps'; did you mean "
     "'warmup_ratio'? (TrainingConfigBuilder.with_training is at fakepkg/builder.py:24)"),
    ("print(spec.max_seq_len)",
     "TB244 spec.max_seq_len: TaskSpec has no attribute 'max_seq_len'; did you mean 'max_length'? "
     "(TaskSpec is at fakepkg/tasks.py:11)"),
    # more of the same kinds
    ("import fakepkg.nothing", "TB242 import fakepkg.nothing: module fakepkg.nothing does not exist"),
    ("fp.ghost_metric(result)", "TB242 fp.ghost_metric: fakepkg reserves 'ghost_metric' in fakepkg.report, which "
                                "does not define it yet"),
    ("fp.fancy_plot()", "TB242 fp.fancy_plot: fakepkg reserves 'fancy_plot' in fakepkg.plots, which does not "
                        "exist yet"),
    ("print(trainer.histroy)", "TB244 trainer.histroy: Trainer has no attribute 'histroy'; did you mean 'history'? "
                               "(Trainer is at fakepkg/training/loop.py:22)"),
    ("print(config.run_dirr)", "TB244 config.run_dirr: TrainingConfig has no attribute 'run_dirr'; did you mean "
                               "'run_dir'? (TrainingConfig is at fakepkg/config.py:12)"),
    ("print(result.summry())", "TB244 result.summry: TrainResult has no attribute 'summry'; did you mean 'summary'? "
                               "(TrainResult is at fakepkg/training/loop.py:13)"),
    ("fp.Trainer(object(), config)", "TB243 Trainer() missing required argument: 'task_spec' (Trainer is at "
                                     "fakepkg/training/loop.py:22)"),
    ('fp.TaskSpec.preset("lm", "text")', "TB243 TaskSpec.preset() takes 1 positional argument but 2 were given "
                                         "(TaskSpec.preset is at fakepkg/tasks.py:18)"),
    ('fp.TrainingConfig("runs", "demo", 1, 0.1, 8, 0.0, [], 0)',
     "TB243 TrainingConfig() takes 7 positional arguments but 8 were given (TrainingConfig is at fakepkg/config.py:12)"),
    ("fp.Trainer(object(), config, spec, seed=0, task_spec=spec)",
     "TB243 Trainer() got multiple values for argument 'task_spec' (Trainer is at fakepkg/training/loop.py:22)"),
    ('fp.TrainingConfigBuilder.preset("quick").with_run(seed=1).buld()',
     "TB244 ....buld: TrainingConfigBuilder has no attribute 'buld'; did you mean 'build'? "
     "(TrainingConfigBuilder is at fakepkg/builder.py:13)"),
    ('b = fp.TrainingConfigBuilder().with_tags("a")\nb.with_training(epoch=1)',
     "TB243 TrainingConfigBuilder.with_training() got an unexpected keyword argument 'epoch'; did you mean 'epochs'? "
     "(TrainingConfigBuilder.with_training is at fakepkg/builder.py:24)"),
    ("Batch([1])", "TB243 Batch() missing required argument: 'labels' (Batch is at fakepkg/data/universal.py:9)"),
    ('from fakepkg.tokenization.data_module import tokenize\ntokenize(text="abc")',
     "TB243 tokenize() got a positional-only argument passed as keyword: 'text' (tokenize is at "
     "fakepkg/tokenization/data_module.py:4)"),
    ("print(fp.TaskSpec.preset('lm').modalty)", "TB244 fp.TaskSpec.preset('lm').modalty: TaskSpec has no attribute "
                                                "'modalty'; did you mean 'modality'? (TaskSpec is at fakepkg/tasks.py:11)"),
])
def test_drift_from_the_package_is_reported(run, source, message):
    code, lines = run(FAKE_CELLS + [("code", source)])
    assert (code, lines) == (1, [f"cell 6:line {source.count(chr(10)) + 1}: {message}"])


@pytest.mark.parametrize("source", [
    "fp.Trainer(object(), config, spec).fit(data, anything=1)",             # a decorator may change the signature
    'print(RemoteTable("db://x").any_column)',                               # __getattr__: any name may exist
    "from fakepkg.data.universal import Columns\nprint(Columns().whatever)",  # a base from another library
    'report.plot_curves(result, colour="red")',                              # **style takes any keyword
    "if epochs > 1:\n    thing = spec\nelse:\n    thing = config\nprint(thing.max_length)",  # two types: unknown
    "item = spec\nitem = [item]\nprint(item.max_seq_len)",                  # reassigned to something else
    "def show(spec):\n    return spec.max_seq_len\nprint([spec.max_seq_len for spec in [object()]])",  # shadowed
    'print(spec.max_seq_len if hasattr(spec, "max_seq_len") else 0)',       # probed first
    'trainer.note = "x"\nprint(trainer.note)',                              # set by the notebook
    "args = [object(), config]\nfp.Trainer(*args, spec)",                   # a splat may fill anything
    "import json\nprint(json.nothing)",                                      # not first-party
    "from fakepkg.data.universal import Record\nprint(Record(a=1).a)",       # setattr(self, name, ...)
    "def swap():\n    global spec\n    spec = None\nswap()\nprint(spec.max_seq_len)",  # rebound by a call
    "match {'s': 1}:\n    case {'s': spec}:\n        print(spec.max_seq_len)",         # captured by a pattern
])
def test_what_the_source_cannot_pin_down_is_never_reported(run, source):
    assert run(FAKE_CELLS + [("code", source)]) == (0, [])


def test_a_submodule_is_an_attribute_once_imported_by_the_notebook_or_the_package(run, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .loaded import x\n")
    (tmp_path / "pkg" / "loaded.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "other.py").write_text("y = 2\n")
    cells = [("code", "import pkg\nprint(pkg.loaded.x, pkg.other.y)")]
    assert run(cells, "--select", "TB24", package=tmp_path / "pkg") == (1, [
        "cell 1:line 2: TB242 pkg.other: pkg.other is a submodule the notebook does not import; use "
        "`from pkg import other`"])
    cells = [("code", "import pkg.other\nprint(pkg.loaded.x, pkg.other.y)")]
    assert run(cells, "--select", "TB24", package=tmp_path / "pkg") == (0, [])


def test_module_getattr_without_a_name_table_accepts_any_name(run, tmp_path):
    (tmp_path / "openpkg").mkdir()
    (tmp_path / "openpkg" / "__init__.py").write_text("def __getattr__(name):\n    return name\n")
    cells = [("code", "import openpkg\nfrom openpkg import anything\nprint(openpkg.whatever, anything)")]
    assert run(cells, "--select", "TB24", package=tmp_path / "openpkg") == (0, [])


def test_installed_trainbook_is_the_default_package(run):
    code, lines = run(FAKE_CELLS + [("code", "import trainbook as tb\ntb.TrainingConfig(epochs=1, log_dir='x')")],
                      "--select", "TB242,TB243,TB244", package=None)
    import inspect

    from trainbook import config
    line = inspect.getsourcelines(config.TrainingConfig)[1]
    line += next(i for i, text in enumerate(inspect.getsourcelines(config.TrainingConfig)[0])
                 if text.startswith("class "))
    assert lines == ["cell 6:line 2: TB243 TrainingConfig() got an unexpected keyword argument 'log_dir' "
                     f"(TrainingConfig is at trainbook/config.py:{line})"]


def test_unknown_package_path_exits_2_with_a_hint(tmp_path, capsys):
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook(FAKE_CELLS)))
    assert lint.main([str(tmp_path / "nb.ipynb"), "--package", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith(f"error: package {tmp_path / 'nowhere'}: no such folder or .py file")
    assert lint.main([str(tmp_path / "nb.ipynb"), "--package", str(tmp_path)]) == 2
    assert "has no __init__.py (HINT: point at the package folder itself" in capsys.readouterr().err


# the static model itself

MODEL_SOURCE = '''
import dataclasses
from dataclasses import InitVar, field
from typing import ClassVar, NamedTuple, Self


@dataclasses.dataclass
class Base:
    name: str
    size: int = 1
    cache: dict = field(default_factory=dict, init=False)


@dataclasses.dataclass(kw_only=True)
class Child(Base):
    LIMIT: ClassVar[int] = 3
    seed: InitVar[int] = 0
    size: int = 2
    tag: str
    scale: InitVar[float]

    def __post_init__(self, seed, scale):
        self.rng = seed * scale

    def again(self) -> Self:
        return self


class Point(NamedTuple):
    x: float
    y: float = 0.0


class Plain:
    def __init__(self, a, /, b, *rest, c, d=1, **extra):
        self.a, (self.b, self.c) = a, (b, c)

    @property
    def total(self) -> "Point":
        return Point(self.a, self.b)

    @classmethod
    def make(cls):
        return cls(1, 2, c=3)
'''


@pytest.fixture
def model(tmp_path) -> PackageModel:
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "__init__.py").write_text(MODEL_SOURCE)
    return PackageModel.load([tmp_path / "mini"])


def params(cls) -> list[tuple[str, str, bool]]:
    return [(p.name, p.kind, p.required) for p in cls.init_params()]


def test_dataclass_fields_follow_dataclasses_rules(model):
    child, _ = model.lookup("mini", "Child")
    # as inspect.signature(Child) says: (name: str, *, size: int = 2, seed: InitVar[int] = 0, tag: str,
    # scale: InitVar[float]);
    # kw_only covers the class's own fields, an overridden field keeps its place, init=False is left out,
    # an InitVar is a parameter and a ClassVar is not
    assert params(child) == [("name", "pos", True), ("size", "kwonly", False), ("seed", "kwonly", False),
                             ("tag", "kwonly", True), ("scale", "kwonly", True)]
    base, _ = model.lookup("mini", "Base")
    assert params(base) == [("name", "pos", True), ("size", "pos", False)]
    assert child.lookup("cache", on_instance=True) == ("attr", (child.mro()[1].fields["cache"]["annotation"],
                                                                child.module))
    assert child.lookup("scale", on_instance=True) is None  # an InitVar is not an attribute...
    assert child.lookup("seed", on_instance=True) == ("unknown", None)  # ...but its default stays a class attribute
    assert child.lookup("rng", on_instance=True) == ("attr", None)
    assert child.lookup("again", on_instance=True)[1].return_class(child) is child


def test_namedtuple_and_plain_class_signatures(model):
    point, _ = model.lookup("mini", "Point")
    assert params(point) == [("x", "pos", True), ("y", "pos", False)]
    assert point.lookup("_replace", on_instance=True) == ("unknown", None)
    plain, _ = model.lookup("mini", "Plain")
    assert params(plain) == [("a", "posonly", True), ("b", "pos", True), ("rest", "varargs", False),
                             ("c", "kwonly", True), ("d", "kwonly", False), ("extra", "varkw", False)]
    assert [plain.lookup(n, on_instance=True) is not None for n in ("a", "b", "c", "total", "make", "zzz")] == \
        [True, True, True, True, True, False]
    kind, total = plain.lookup("total", on_instance=True)
    assert kind == "property" and total.return_class(plain) is point
    kind, make = plain.lookup("make", on_instance=False)
    assert kind == "classmethod" and make.return_class(plain) is plain
