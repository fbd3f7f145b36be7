"""Tests for trainbook.lint: legacy strings (TB1xx) and the notebook contract (TB2xx).

Each rule has a failing notebook and a passing one, built in tmp_path from GOOD_CELLS with one
change, and its message is asserted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import trainbook
from trainbook import lint
from trainbook.lint import rules as lint_rules
from trainbook.lint import structure as lint_structure
from trainbook.lint.parsed import ParsedNotebook

REPO = Path(__file__).resolve().parents[1]
VERSION = trainbook.__version__
BADGE_URL = "https://colab.research.google.com/github/acme/demo/blob/main/nb.ipynb"
TITLE = f"""# Demo

[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({BADGE_URL})"""
PARAMS = f"""#@title Parameters
task = "lm"  # @param ["lm", "vision-cls"]
epochs = 2  # @param {{type:"integer"}}
learning_rate = -0.5  # @param {{type:"number"}}
sizes = [1, 2]  # @param {{type:"raw"}}

run_hp_search = False  # @param {{type:"boolean"}}
helpers_ref = "v{VERSION}"  # @param {{type:"string"}}"""
SETUP = """import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    from google.colab import drive, userdata

    drive.mount("/content/drive")
    key = userdata.get("WANDB_API_KEY")
    %pip install -q "trainbook @ git+https://github.com/acme/demo@{helpers_ref}#subdirectory=helpers"

import trainbook as tb

tb.verify_installation(f"=={helpers_ref.removeprefix('v')}")"""
TRAIN = """cfg = tb.TrainingConfig(epochs=epochs, learning_rate=abs(learning_rate))
print(cfg.summary(), task, sizes, run_hp_search)"""
GOOD_CELLS = [("markdown", "title", TITLE), ("parameters", "parameters", PARAMS), ("code", "setup", SETUP),
              ("code", "train", TRAIN)]


def notebook(cells) -> dict:
    """The notebook as git stores it (like notebooks/build.py): line lists, ids, no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    for kind, cell_id, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if kind == "parameters":
            cell.metadata = {"tags": ["parameters"], "cellView": "form"}
        cell.id = cell_id
        nb.cells.append(cell)
    data = json.loads(nbformat.writes(nb))
    for cell in data["cells"]:
        src = cell["source"]
        cell["source"] = src.splitlines(keepends=True) if isinstance(src, str) else src
    return data


def with_cell(source, kind="code"):
    return notebook(GOOD_CELLS + [(kind, "extra", source)])


@pytest.fixture
def run(tmp_path, capsys, monkeypatch):
    """Write a notebook (or text file) into a fake repo and lint it: (exit code, finding lines)."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)

    def go(nb, *args, name="nb.ipynb"):
        path = tmp_path / name
        path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1))
        code = lint.main([name, *args])
        out = capsys.readouterr().out.splitlines()
        return code, [line.removeprefix(f"{name}:") for line in out[:-1]]

    return go


def only(lines, prefix):
    """The finding lines whose code starts with `prefix`."""
    return [line for line in lines if re.match(r"(cell \d+:)?(line \d+:)? ?" + prefix, line)]


def test_good_notebook_is_clean(run):
    assert run(notebook(GOOD_CELLS)) == (0, [])


def test_our_notebooks_pass(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert lint.main(["notebooks/"]) == 0
    assert capsys.readouterr().out.startswith("0 finding(s), 0 unreadable, ")


def test_parameter_names_agree_with_papermill(tmp_path):
    from papermill import inspect_notebook

    for path in (REPO / "notebooks" / "training.ipynb", REPO / "notebooks" / "model_check.ipynb", tmp_path / "nb.ipynb"):
        if not path.exists():
            path.write_text(json.dumps(notebook(GOOD_CELLS)))
        ctx = ParsedNotebook(lint.read_notebook(path), path)
        lint_rules.check_parameters(ctx)
        assert ctx.findings == []
        assert list(ctx.params) == list(inspect_notebook(str(path)))


# ---------------------------------------------------------------------------------------------
# legacy strings

LEGACY_CELLS = [
    ("markdown", "title", TITLE + """

> **Migration note:** this notebook moved to the new API in v2."""),
    ("parameters", "parameters", PARAMS + """
trainer_backend = "tier3"  # @param ["tier3", "trainbook"]"""),
    ("markdown", "old-md", """## Old API (Removed)

The `test_fine_tuning()` helper from `utils.tier3_training_utilities` was replaced by
`tb.Trainer`; see the TIER3 notes (frontier3 and tier30 are other projects)."""),
    ("code", "old-import", """# Deprecated: kept for reference
from utils.tier3_training_utilities import test_fine_tuning, test_hyperparameter_search
from utils import tier2_helpers"""),
    ("code", "old-run", """results = test_fine_tuning(task, epochs=epochs)
search = test_hyperparameter_search(results)  # trainbook-lint: allow legacy"""),
    ("markdown", "new-md", """## New API

Use `tb.Trainer` instead; the legacy helpers are deprecated."""),
]


def test_legacy_notebook_reports_each_occurrence_with_cell_and_line(run):
    nb = notebook(LEGACY_CELLS)
    nb["cells"][4]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["epoch 1\n", "tier3 done\n"]}]
    code, lines = run(nb, "--verbose")
    assert code == 1
    found = [line.split(": ")[0] + ": " + line.split("'")[1] for line in lines if " TB1" in line]
    assert found == [
        "cell 1:line 5: Migration", "cell 1:line 5: new API",
        "cell 2:line 9: tier3",
        "cell 3:line 1: Old API", "cell 3:line 1: Removed",
        "cell 3:line 3: test_fine_tuning", "cell 3:line 3: utils.tier3_training_utilities", "cell 3:line 3: replaced",
        "cell 3:line 4: TIER3",
        "cell 4:line 1: Deprecated",
        "cell 4:line 2: utils.tier3_training_utilities", "cell 4:line 2: test_fine_tuning",
        "cell 4:line 2: test_hyperparameter_search",
        "cell 4:line 3: utils import tier2_helpers",
        "cell 5:line 1: test_fine_tuning",
        "cell 5:line 2: test_hyperparameter_search",  # TB100: allowed by the pragma, shown with --verbose
        "cell 5:line 2: tier3",  # second line of output 1
        "cell 6:line 1: New API", "cell 6:line 3: legacy", "cell 6:line 3: deprecated",
    ]
    assert "cell 5:line 2: TB100 allowed by pragma: TB101 legacy API 'test_hyperparameter_search': " \
           "function of the previous notebook API; use tb.run_search(cfg, space=..., model_factory=...)" in lines
    assert "cell 5:line 2: TB101 legacy API 'tier3' in output 1: name of the previous notebook API; use trainbook" in lines
    assert "cell 3:line 1: TB102 history wording 'Removed': migration-guide wording; say what the notebook " \
           "does, not what changed" in lines


def test_legacy_api_in_code_pip_line_and_param_comment(run):
    source = '!pip install tier3\nmode = "fast"  # tier3 compatible'
    code, lines = run(notebook(GOOD_CELLS + [("code", "x", "if IN_COLAB:\n    " + source.replace("\n", "\n    "))]))
    assert code == 1
    assert lines == ["cell 5:line 2: TB101 legacy API 'tier3': name of the previous notebook API; use trainbook",
                     "cell 5:line 3: TB101 legacy API 'tier3': name of the previous notebook API; use trainbook"]


def test_legacy_whole_words_only_pass(run):
    assert run(with_cell("frontier3 = tier30 = legacy_mode = 1\nprint(frontier3, tier30, legacy_mode)")) == (0, [])


def test_pragma_silences_line_and_is_hidden_without_verbose(run):
    code, lines = run(with_cell("# the Legacy section  (trainbook-lint: allow legacy)", kind="markdown"))
    assert (code, lines) == (0, [])


def test_py_and_md_files_get_api_patterns_but_not_history_wording(run):
    text = "# Legacy notes, removed and replaced\nfrom utils.tier3_training_utilities import x\n"
    for name in ("notes.py", "notes.md"):
        code, lines = run(text, name=name)
        assert code == 1
        assert lines == ["line 2: TB101 legacy API 'utils.tier3_training_utilities': import from the previous "
                         "notebook API's utils.tier modules; use import trainbook as tb"]
    assert run("# Legacy notes, removed and replaced\n", name="clean.md") == (0, [])


def test_patterns_from_pyproject_and_patterns_file(run, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\n'
                                             'api = [{pattern = "fit_v1", reason = "old trainer", use = "tb.Trainer"}]\n'
                                             'history = ["sunset"]\n')
    (tmp_path / "more.json").write_text(json.dumps({"api": [{"regex": r"run_tier\d", "reason": "old runner"}]}))
    nb = with_cell("fit_v1(1)  # sunset soon\nrun_tier2()")
    code, lines = run(nb, "--patterns", "more.json")
    assert only(lines, "TB10") == [
        "cell 5:line 1: TB101 legacy API 'fit_v1': old trainer; use tb.Trainer",
        "cell 5:line 1: TB102 history wording 'sunset': listed in the lint patterns",
        "cell 5:line 2: TB101 legacy API 'run_tier2': old runner"]


def test_pyproject_found_from_cwd_when_not_above_the_path(tmp_path, capsys, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir(), elsewhere.mkdir()
    (project / "pyproject.toml").write_text('[tool.trainbook.lint]\napi = ["fit_v1"]\n')
    (elsewhere / "a.py").write_text("fit_v1()\n")
    monkeypatch.chdir(project)
    assert lint.main([str(elsewhere / "a.py")]) == 1
    assert "line 1: TB101 legacy API 'fit_v1'" in capsys.readouterr().out


def test_pyproject_without_tomllib_is_ignored_with_a_note(tmp_path, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\napi = ["fit_v1"]\n')
    (tmp_path / "a.py").write_text("fit_v1()\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    assert lint.main([str(tmp_path / "a.py")]) == 0
    assert "[tool.trainbook.lint] is ignored because this Python has no tomllib" in capsys.readouterr().err


@pytest.mark.parametrize("data, message", [
    ({"apis": []}, "unknown key(s) ['apis']; expected 'api' and/or 'history'"),
    ({"api": "tier4"}, "'api' must be a list; got str"),
    ({"api": [{"pattern": "a", "regex": "b"}]}, "api[0]: give exactly one of 'pattern' (literal) or 'regex'"),
    ({"api": [{"regex": "("}]}, "api[0]: invalid regex '('"),
    ({"history": [{"word": "x"}]}, "history[0]: unknown key(s) ['word']"),
])
def test_bad_patterns_file_exits_2_with_its_name(run, tmp_path, capsys, data, message):
    (tmp_path / "bad.json").write_text(json.dumps(data))
    assert lint.main(["--patterns", str(tmp_path / "bad.json"), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.json" in err and message in err


# ---------------------------------------------------------------------------------------------
# unreadable input: exit 2, one line, no traceback


@pytest.mark.parametrize("name, text, message", [
    ("a.ipynb", '{"cells": [', "invalid JSON at line 1 column 12: Expecting value"),
    ("a.ipynb", "[1, 2]", "not a Jupyter notebook (no 'cells' list at the top level)"),
    ("a.ipynb", '{"cells": [], "nbformat": 3}', "nbformat 3 is not supported; need 4"),
    ("a.ipynb", '{"cells": [1], "nbformat": 4}', "not a Jupyter notebook (cell 1 is not a JSON object)"),
    ("a.txt", "hello", "not a notebook, .py or .md file"),
])
def test_unreadable_input_exits_2_with_one_line(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    assert lint.main([str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"{tmp_path / name}: ") and message in err


def test_unreadable_file_does_not_stop_the_others(tmp_path, capsys):
    (tmp_path / "a.ipynb").write_text("{")
    (tmp_path / "b.py").write_text("import tier3\n")
    assert lint.main([str(tmp_path / "a.ipynb"), str(tmp_path / "b.py")]) == 2
    out = capsys.readouterr().out
    assert "b.py:line 1: TB101" in out and out.endswith("1 finding(s), 1 unreadable, 2 file(s) checked\n")


def test_module_cli_exits_2_without_traceback(tmp_path):
    (tmp_path / "a.ipynb").write_text("not json")
    done = subprocess.run([sys.executable, "-m", "trainbook.lint", str(tmp_path / "a.ipynb")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "invalid JSON at line 1 column 1" in done.stderr
    assert (Path(sys.executable).parent / "trainbook-lint").exists()


def test_directory_skips_checkpoints_and_runs(tmp_path, capsys):
    for folder in (".ipynb_checkpoints", "runs", "sub"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.ipynb").write_text("{")
    assert lint.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'sub' / 'x.ipynb'}: invalid JSON at line 1 column 2: " \
                                              "Expecting property name enclosed in double quotes"


# ---------------------------------------------------------------------------------------------
# contract rules: each with a failing and a passing notebook


def test_nbformat_minor_below_5_and_schema_errors(run):
    nb = notebook(GOOD_CELLS)
    nb["nbformat_minor"] = 4
    nb["cells"][0]["outputs"] = []
    code, lines = run(nb)
    assert code == 1
    assert lines == [" TB201 nbformat_minor is 4; need 5, the version with cell ids (HINT: re-save it with "
                     "nbformat.write(nbformat.read(path, as_version=4), path))",
                     "cell 1:line 1: TB201 invalid nbformat 4.5: Additional properties are not allowed "
                     "('outputs' was unexpected)"]


def test_cell_ids_missing_or_duplicated(run):
    nb = notebook(GOOD_CELLS)
    del nb["cells"][0]["id"]
    nb["cells"][3]["id"] = "setup"
    assert run(nb) == (1, ["cell 1:line 1: TB202 cell has no id (nbformat 4.5 needs one per cell)",
                           "cell 4:line 1: TB202 duplicate cell id 'setup' (also cell 3)"])


def test_code_cell_keys_missing(run):
    nb = notebook(GOOD_CELLS)
    del nb["cells"][2]["outputs"], nb["cells"][3]["execution_count"]
    assert run(nb) == (1, ["cell 3:line 1: TB203 code cell has no 'outputs' key (write it with nbformat or Jupyter)",
                           "cell 4:line 1: TB203 code cell has no 'execution_count' key (write it with nbformat or "
                           "Jupyter)"])


@pytest.mark.parametrize("source, expected", [
    ("cfg = 1\nprint(cfg)", "line 1: TB204 source is a str, not a list of lines (write the notebook with nbformat)"),
    (["cfg = 1", "  # one"], 'line 1: TB204 source lines must each end with one "\\n" (except the last)'),
    (["cfg = 1\nx = 2\n", "print(cfg)"], 'line 1: TB204 source lines must each end with one "\\n" (except the last)'),
    (["cfg = 1\n", "print(cfg)\n"], 'line 2: TB204 the last source line must not end with "\\n"'),
])
def test_source_must_be_line_list(run, source, expected):
    nb = notebook(GOOD_CELLS)
    nb["cells"][3]["source"] = source
    assert run(nb) == (1, [f"cell 4:{expected}"])


def test_outputs_not_stripped(run):
    nb = notebook(GOOD_CELLS)
    nb["cells"][3]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    nb["cells"][2]["execution_count"] = 3
    assert run(nb) == (1, [
        "cell 3:line 1: TB205 outputs are not stripped (0 output(s), execution_count 3); strip them with "
        "nbstripout or `jupyter nbconvert --clear-output --inplace`",
        "cell 4:line 1: TB205 outputs are not stripped (1 output(s), execution_count None); strip them with "
        "nbstripout or `jupyter nbconvert --clear-output --inplace`"])


def test_parameters_cell_missing_or_twice(run):
    nb = notebook(GOOD_CELLS)
    nb["cells"][1]["metadata"]["tags"] = []
    code, lines = run(nb)
    assert only(lines, "TB211") == [" TB211 no cell is tagged 'parameters'; tag the form cell so papermill can inject values"]
    nb["cells"][1]["metadata"]["tags"] = ["parameters"]
    nb["cells"][3]["metadata"]["tags"] = ["x", "parameters"]
    assert run(nb) == (1, ["cell 4:line 1: TB211 a second cell tagged 'parameters' (the first is cell 2); "
                           "papermill injects after the first only: keep one"])


def test_parameters_cell_needs_cellview_form(run):
    nb = notebook(GOOD_CELLS)
    nb["cells"][1]["metadata"]["cellView"] = "code"
    assert run(nb) == (1, ['cell 2:line 1: TB212 the parameters cell needs metadata "cellView": "form" '
                           "(Colab shows it as a form)"])


@pytest.mark.parametrize("line, problem", [
    ("lr = 3 * 1e-4  # @param", "the value of 'lr' is not a literal"),
    ("data_dir = os.getcwd()  # @param", "the value of 'data_dir' is not a literal"),
    ("space = {'lr': [1, 2],", "not a complete one-line statement (papermill reads one assignment per line)"),
    ("a = 1; b = 2  # @param", "not a single `name = value` assignment"),
    ("a = b = 1  # @param", "not a single `name = value` assignment"),
    ("print(1)", "not a single `name = value` assignment"),
    ('query = "x=1"  # @param {type:"string"}', "papermill cannot parse 'query': a parameter line may hold only one '='"),
    ("seed = 0", "'seed' has no '# @param' annotation, so Colab's form does not show it"),
])
def test_parameter_lines_are_single_line_literals(run, line, problem):
    cells = [GOOD_CELLS[0], ("parameters", "parameters", PARAMS + "\n" + line), *GOOD_CELLS[2:]]
    code, lines = run(notebook(cells))
    assert code == 1
    assert only(lines, "TB213") == [f"cell 2:line 9: TB213 {problem}; each line must be "
                                    "`name = literal  # @param ...` (derive values in the next cell)"]


def test_papermill_misses_a_line_the_lint_rejects(tmp_path):
    from papermill import inspect_notebook

    cells = [GOOD_CELLS[0], ("parameters", "parameters", PARAMS + '\nquery = "x=1"  # @param'), *GOOD_CELLS[2:]]
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook(cells)))
    assert "query" not in inspect_notebook(str(tmp_path / "nb.ipynb"))


def test_cell_that_does_not_parse(run):
    code, lines = run(with_cell("def f(:\n    pass"))
    assert (code, lines) == (1, ["cell 5:line 1: TB221 cell does not parse as Python: invalid syntax"])
    assert run(with_cell("%%bash\necho {not python}")) == (0, [])


@pytest.mark.parametrize("call", ["globals()", "locals()", "vars()", "dir()"])
def test_namespace_probing(run, call):
    code, lines = run(with_cell(f'if "cfg" not in {call}:\n    cfg = None'))
    assert lines == [f"cell 5:line 1: TB222 {call[:-2]}() probes the namespace; use names defined in an earlier "
                     "cell, or pass values explicitly"]


def test_namespace_probing_pass(run):
    assert run(with_cell("print(vars(cfg), dir(tb), cfg.globals if hasattr(cfg, 'globals') else None)")) == (0, [])


@pytest.mark.parametrize("source, line, what", [
    ("from google.colab import files", 1, "importing google.colab"),
    ("import google.colab", 1, "importing google.colab"),
    ("from google import colab", 1, "importing google.colab"),
    ('from google.colab import drive\nif IN_COLAB:\n    pass\ndrive.mount("/content")', 4, "drive.mount"),
    ('if not IN_COLAB:\n    token = userdata.get("KEY")', 2, "Colab userdata (secrets)"),
    ("!pip install -q wandb", 1, "`!pip ...`"),
    ("if IN_COLAB:\n    pass\n%pip install -q wandb", 3, "`%pip ...`"),
    ("!python -m pip install wandb", 1, "`!python ...`"),
])
def test_colab_only_outside_guard(run, source, line, what):
    code, lines = run(with_cell(source))
    assert only(lines, "TB231")[-1] == (f"cell 5:line {line}: TB231 {what} outside an `if IN_COLAB:` block; Colab-only "
                                        "actions (google.colab, drive.mount, userdata, %pip/!pip) go under the guard")


def test_colab_only_inside_guard_pass(run):
    source = ('if not IN_COLAB:\n    print("local")\nelse:\n    from google.colab import files\n'
              '    !pip install -q wandb\nif IN_COLAB and task == "lm":\n    files.download("x")')
    assert run(with_cell(source)) == (0, [])


@pytest.mark.parametrize("source, func", [
    ("name = input('run name? ')", "input"),
    ("import getpass\nkey = getpass.getpass()", "getpass"),
    ("from getpass import getpass\nkey = getpass('key: ')", "getpass"),
])
def test_prompts(run, source, func):
    code, lines = run(with_cell(source))
    assert only(lines, "TB232") == [f"cell 5:line {source.count(chr(10)) + 1}: TB232 {func}() waits for typing "
                                    "and blocks Run all and papermill; read it from a parameter, an environment "
                                    "variable or a Colab secret"]


def test_prompts_pass(run):
    assert run(with_cell("import os\nkey = os.environ.get('WANDB_API_KEY', '')\ninputs = [key]")) == (0, [])


def test_helper_ref_must_equal_package_version(run):
    cells = [GOOD_CELLS[0], ("parameters", "parameters", PARAMS.replace(f"v{VERSION}", "v0.0.9")), *GOOD_CELLS[2:]]
    assert run(notebook(cells)) == (1, [f"cell 2:line 8: TB241 helpers_ref 'v0.0.9' does not match "
                                        f"trainbook.__version__ '{VERSION}'; pin \"v{VERSION}\" (or release the "
                                        "helpers at that tag)"])


def test_helper_ref_pinned_in_pip_line_and_missing(run):
    pip = 'if IN_COLAB:\n    !pip install "trainbook @ git+https://github.com/acme/demo@v9.9.9#subdirectory=helpers"'
    code, lines = run(with_cell(pip))
    assert lines == [f"cell 5:line 2: TB241 the pinned install 'v9.9.9' does not match trainbook.__version__ "
                     f"'{VERSION}'; pin \"v{VERSION}\" (or release the helpers at that tag)"]
    assert run(with_cell(pip.replace("v9.9.9", f"v{VERSION}"))) == (0, [])
    params = "\n".join(line for line in PARAMS.splitlines() if not line.startswith("helpers_ref"))
    setup = SETUP.replace("@{helpers_ref}", "").replace("helpers_ref.removeprefix('v')", "tb.__version__")
    cells = [GOOD_CELLS[0], ("parameters", "parameters", params), ("code", "setup", setup), GOOD_CELLS[3]]
    assert run(notebook(cells)) == (1, [f' TB241 no pinned helper ref; add helpers_ref = "v{VERSION}"  '
                                        '# @param {type:"string"} to the parameters cell and install trainbook '
                                        "at that ref in Colab"])


@pytest.mark.parametrize("source, message", [
    ("tb.TrainingConfg()", "tb.TrainingConfg: trainbook has no name 'TrainingConfg'; did you mean 'TrainingConfig'?"),
    ("from trainbook import Trainerr", "from trainbook import Trainerr: trainbook has no name 'Trainerr'; "
                                       "did you mean 'Trainer'?"),
    ("from trainbook.config import Nope", "from trainbook.config import Nope: trainbook.config has no name 'Nope'"),
    ("from trainbook.nowhere import x", "from trainbook.nowhere import x: module trainbook.nowhere does not exist"),
    ("import trainbook.nowhere", "import trainbook.nowhere: module trainbook.nowhere does not exist"),
    ("tb.engine.trainer", "tb.engine: trainbook.engine is a submodule the notebook does not import; use "
                          "`from trainbook import engine`"),
])
def test_trainbook_names_must_exist(run, source, message):
    code, lines = run(with_cell(source))
    assert only(lines, "TB242") == [f"cell 5:line 1: TB242 {message}"]


def test_trainbook_reserved_but_unimplemented_names(run, monkeypatch):
    monkeypatch.setitem(trainbook._EXPORTS, "fancy_plot", "dashboard")
    monkeypatch.setitem(trainbook._EXPORTS, "future_thing", "not_written_yet")
    code, lines = run(with_cell("tb.fancy_plot()\ntb.future_thing()"))
    assert only(lines, "TB242") == [
        "cell 5:line 1: TB242 tb.fancy_plot: trainbook reserves 'fancy_plot' in trainbook.dashboard, which does "
        "not define it yet",
        "cell 5:line 2: TB242 tb.future_thing: trainbook reserves 'future_thing' in trainbook.not_written_yet, "
        "which does not exist yet"]


def test_trainbook_names_pass(run):
    source = ("import trainbook.engine.trainer\nfrom trainbook import builder, config, engine\n"
              "from trainbook.config import TrainingConfig, ConfigError\nimport trainbook.tasks as tasks\n"
              "print(tb.__version__, tb.Trainer, tb.engine.trainer, trainbook.config, tasks.TaskSpec, "
              "builder.TrainingConfigBuilder, config.FIELD_NAMES, TrainingConfig, ConfigError)")
    assert run(with_cell(source)) == (0, [])


@pytest.mark.parametrize("url", [
    "https://colab.research.google.com/github/acme/demo/blob/main/notebooks/nb.ipynb",
    "https://colab.research.google.com/github/acme/demo/blob/main/other.ipynb",
    "https://colab.research.google.com/drive/1AbCdEf",
])
def test_colab_badge_must_point_at_this_notebook(run, url):
    cells = [("markdown", "title", TITLE.replace(BADGE_URL, url)), *GOOD_CELLS[1:]]
    assert run(notebook(cells)) == (1, [f"cell 1:line 3: TB251 the Open-in-Colab URL {url} does not open this "
                                        "notebook; it must end with /blob/<branch>/nb.ipynb"])


def test_colab_badge_pass_on_other_branch_and_subfolder(run, tmp_path):
    cells = [("markdown", "title", TITLE.replace("blob/main/nb.ipynb", "blob/dev/sub/nb.ipynb")), *GOOD_CELLS[1:]]
    (tmp_path / "sub").mkdir()
    assert run(notebook(cells), name="sub/nb.ipynb") == (0, [])


def test_colab_links_after_the_badge_may_open_the_suites_other_notebooks(run, tmp_path):
    (tmp_path / "other.ipynb").write_text("{}")
    link = "\n\nThen [train it](https://colab.research.google.com/github/acme/demo/blob/main/other.ipynb)."
    assert run(notebook([("markdown", "title", TITLE + link), *GOOD_CELLS[1:]])) == (0, [])
    missing = link.replace("other.ipynb", "gone.ipynb")
    assert run(notebook([("markdown", "title", TITLE + missing), *GOOD_CELLS[1:]])) == (1, [
        "cell 1:line 5: TB251 the Colab link https://colab.research.google.com/github/acme/demo/blob/main/gone.ipynb "
        "does not open a notebook of this repository; link to notebooks/<name>.ipynb"])


def test_colab_badge_missing(run):
    code, lines = run(notebook([("markdown", "title", "# Demo"), *GOOD_CELLS[1:]]))
    assert lines == [" TB251 no Open-in-Colab badge; add [![Open In Colab](https://colab.research.google.com/assets/"
                     "colab-badge.svg)](https://colab.research.google.com/github/<owner>/<repo>/blob/main/nb.ipynb) "
                     "to the first cell"]


def test_badge_without_repo_root_compares_the_file_name(tmp_path):
    path = tmp_path / "nb.ipynb"
    assert lint_structure.repo_relative(path) == "nb.ipynb"
    assert lint_structure.repo_relative(REPO / "notebooks" / "training.ipynb") == "notebooks/training.ipynb"


# ---------------------------------------------------------------------------------------------
# names: TB223


@pytest.mark.parametrize("source, expected", [
    ("print(model)", "line 1: TB223 name 'model' is used before anything defines it; define or import it in "
                     "an earlier cell"),
    ("print(later)\nlater = 1", "line 1: TB223 name 'later' is used before anything defines it; it is assigned "
                                "further down this cell"),
    ("squares = [k * k for k in range(3)]\nprint(k)", "line 2: TB223 name 'k' is used before anything defines "
                                                      "it; define or import it in an earlier cell"),
    ("def f(a):\n    return a + b", "line 2: TB223 name 'b' is used before anything defines it; define or "
                                    "import it in an earlier cell"),
    ("class A:\n    x = 1\n    def m(self):\n        return x", "line 4: TB223 name 'x' is used before anything "
                                                                "defines it; define or import it in an earlier cell"),
    ("total += 1", "line 1: TB223 name 'total' is used before anything defines it; define or import it in an "
                   "earlier cell"),
    ("try:\n    pass\nexcept undefined_error:\n    pass", "line 3: TB223 name 'undefined_error' is used before "
                                                          "anything defines it; define or import it in an earlier cell"),
    ("%time value = slow()", "line 1: TB223 name 'slow' is used before anything defines it; define or import "
                             "it in an earlier cell"),
])
def test_undefined_names(run, source, expected):
    code, lines = run(notebook(GOOD_CELLS + [("code", "extra", source.replace("%time ", ""))]))
    assert only(lines, "TB223") == [f"cell 5:{expected}"]


def test_name_defined_in_a_later_cell_names_that_cell(run):
    nb = notebook(GOOD_CELLS[:3] + [("code", "use", "print(result)"), GOOD_CELLS[3], ("code", "def", "result = 1")])
    assert run(nb) == (1, ["cell 4:line 1: TB223 name 'result' is used before anything defines it; cell 6 defines "
                           "it: move that definition above"])


def test_only_first_use_of_each_undefined_name_is_reported(run):
    code, lines = run(with_cell("print(ghost)\nprint(ghost)\nprint(ghost, spirit)"))
    assert [line.split(": ")[0] + " " + line.split("'")[1] for line in lines] == \
        ["cell 5:line 1 ghost", "cell 5:line 3 spirit"]


NAME_CONSTRUCTS = '''\
import os.path
from collections import OrderedDict as OD
files = !ls
%%capture
def scale(x, *rest, factor=2, **options) -> int:
    helper = lambda y, z=factor: y * z + len(rest) + len(options)
    return helper(x)
async def fetch():
    async for item in source():
        yield item
def source():
    return later_global
class Box:
    size = scale(1)
    double = size * 2
    items = [n for n in range(size)]
for i, (j, k) in enumerate([(1, 2)]):
    pairs = {i: j + k}
with open(os.path.devnull) as handle, open(os.path.devnull) as (a):
    pass
try:
    raise ValueError
except ValueError as err:
    problem = err
if (n := len(pairs)) > 0:
    print(n, OD(), Box.double, handle, a, problem, files)
def set_global():
    global made_here
    made_here = 1
total = sum(v for v in range(3) if v)
table = {key: value for key, value in [(1, 2)]}
match table:
    case {1: first, **others}:
        print(first, others)
    case [head, *tail]:
        print(head, tail)
later_global = 1
print(__name__, display, get_ipython)'''


def test_name_constructs_pass(run):
    nb = notebook(GOOD_CELLS + [("code", "constructs", NAME_CONSTRUCTS.replace("%%capture\n", "")),
                                ("code", "capture", "%%capture captured\nprint(made_here, total)"),
                                ("code", "after", "print(captured)")])
    assert run(nb) == (0, [])


def test_star_import_stops_name_reports(run):
    assert run(with_cell("from os.path import *\nprint(join('a', 'b'), anything)")) == (0, [])


@pytest.mark.parametrize("mutate, expected", [
    (lambda nb: nb["cells"][3].__setitem__("cell_type", "codex"),
     "cell 4:line 1: TB201 invalid nbformat 4.5: the cell does not match the schema of cell_type 'codex'"),
    (lambda nb: nb.__setitem__("metadata", []), " TB201 invalid nbformat 4.5: [] is not of type 'object'"),
    (lambda nb: nb["cells"][1].__setitem__("metadata", ["x"]),
     " TB211 no cell is tagged 'parameters'; tag the form cell so papermill can inject values"),
    (lambda nb: nb["cells"][3].__setitem__("outputs", [{"output_type": "display_data", "data": ["x"], "metadata": {}}]),
     "cell 4:line 1: TB201 invalid nbformat 4.5: ['x'] is not of type 'object'"),
    (lambda nb: nb["cells"][3].__setitem__("source", ["x = '\x00'"]),
     "cell 4:line 1: TB221 cell does not parse as Python: source code string cannot contain null bytes"),
])
def test_malformed_notebooks_are_reported_without_a_traceback(run, mutate, expected):
    nb = notebook(GOOD_CELLS)
    mutate(nb)
    code, lines = run(nb)
    assert code == 1 and expected in lines


def test_pragma_counts_in_summary_and_works_in_py_files(tmp_path, capsys):
    (tmp_path / "a.py").write_text("import tier3  # trainbook-lint: allow legacy\n")
    assert lint.main([str(tmp_path / "a.py")]) == 0
    assert capsys.readouterr().out == "0 finding(s), 0 unreadable, 1 file(s) checked, 1 allowed by pragma\n"
    assert lint.main([str(tmp_path / "a.py"), "-v"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{tmp_path / 'a.py'}:line 1: TB100 allowed by pragma: TB101 legacy API 'tier3': name of the previous "
        "notebook API; use trainbook")
