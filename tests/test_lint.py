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
from trainbook.lint.grammar import HOST as HOST_VERSION
from trainbook.lint import rules as lint_rules
from trainbook.lint import structure as lint_structure
from trainbook.lint.parsed import ParsedNotebook

REPO = Path(__file__).resolve().parents[1]
VERSION = trainbook.__version__
HOST = ".".join(map(str, HOST_VERSION))
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
    (["cfg = 1", "  # one"], 'line 1: TB204 source line 1 does not end with "\\n", so Jupyter joins it with the '
                             "next line: 'cfg = 1  # one'"),
    (["import os\n", "import sys", "print(os, sys)"], 'line 2: TB204 source line 2 does not end with "\\n", so '
                                                     "Jupyter joins it with the next line: 'import sysprint(os, sys)'"),
    (list("print(1)"), "line 1: TB204 source is stored one character per item (8 items): a writer split a string "
                       "into characters (write the notebook with nbformat)"),
    (["# Load the data import os import sys data = load()"],
     "line 1: TB204 the cell is one comment line that holds code, so nothing in it runs (lines joined after a "
     "comment?): '# Load the data import os import sys data = load()'"),
    (["# Train cfg = make_config() result = train(cfg)"],
     "line 1: TB204 the cell is one comment line that holds code, so nothing in it runs (lines joined after a "
     "comment?): '# Train cfg = make_config() result = train(cfg)'"),
    (["x = 1\n", 7], "line 2: TB204 source line 2 is a int, not a string: its text is lost"),
])
def test_source_that_jupyter_would_run_differently_is_fatal(run, source, expected):
    nb = notebook(GOOD_CELLS)
    nb["cells"][3]["source"] = source
    code, lines = run(nb)
    assert code == 1 and only(lines, "TB204") == [f"cell 4:{expected}"]


@pytest.mark.parametrize("source, expected", [
    ("cfg = 1\nprint(cfg)", "line 1: TB206 source is a str, not a list of lines (write the notebook with nbformat)"),
    (["cfg = 1\nx = 2\n", "print(cfg)"], "line 1: TB206 source line 1 holds several lines; store one line per item "
                                        "(write the notebook with nbformat)"),
    (["cfg = 1\n", "print(cfg)\n"], 'line 2: TB206 the last source line must not end with "\\n"'),
])
def test_source_stored_differently_is_cosmetic(run, source, expected):
    nb = notebook(GOOD_CELLS)
    nb["cells"][3]["source"] = source
    assert run(nb) == (1, [f"cell 4:{expected}"])
    assert run(nb, "--ignore", "TB206") == (0, [])


@pytest.mark.parametrize("source", [["# TODO: tune the learning rate later"], ["# we import numpy here"], ["1"],
                                    ["# Optional: tb.plot_training(result) and tb.record(run_dir, x=1)"]])
def test_short_comment_cells_and_single_items_pass(run, source):
    nb = notebook(GOOD_CELLS + [("code", "extra", "x = 1")])
    nb["cells"][4]["source"] = source
    assert run(nb) == (0, [])


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


def test_ipython_help_lines_are_not_python(run):
    assert run(with_cell("tb.TrainingConfig?\n??tb.Trainer\nprint(cfg)  # why?")) == (0, [])


def test_cell_that_does_not_parse(run):
    code, lines = run(with_cell("def f(:\n    pass"), "--target-version", HOST)
    assert (code, lines) == (1, [f"cell 5:line 1: TB221 cell does not parse as Python {HOST}: invalid syntax"])
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
                                        "actions (google.colab, drive.mount, userdata, %pip/!pip) go under the guard "
                                        "(or in a try whose except ImportError sets the flag False)")


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


# ---------------------------------------------------------------------------------------------
# wrong cell type: TB207; Colab form fields without the form view: TB214


@pytest.mark.parametrize("source, line", [
    ("# Setup\n\nimport trainbook as tb\ncfg = tb.TrainingConfig()", 3),
    ("!pip install -q wandb\n%cd /content", 1),
    ("model = build()\nresult = train(model)", 1),
])
def test_markdown_that_is_code(run, source, line):
    code, lines = run(with_cell(source, kind="markdown"))
    assert lines == [f"cell 5:line {line}: TB207 markdown cell holds Python code, so it never runs; change its type "
                     "to code"]


@pytest.mark.parametrize("source", [
    "Note (optional)",
    "## Results\n\nThe model trains for `epochs` epochs.\n\n```python\nimport trainbook as tb\n```",
    "print(result)",
    "![curves](training_curves.png)\n\nLoss falls, then flattens.",
])
def test_markdown_that_is_prose_passes(run, source):
    assert run(with_cell(source, kind="markdown")) == (0, [])


def test_code_that_reads_as_prose(run):
    source = "## Training\n\nThis cell trains the model on the data.\nRun it after the setup cell above."
    assert run(with_cell(source)) == (1, ["cell 5:line 3: TB207 code cell reads as prose (markdown saved as a code "
                                          "cell?); change its type to markdown"])
    code, lines = run(with_cell("print(cfg\nx = [1, 2"), "--target-version", HOST)
    assert codes(lines) == ["TB221"]  # broken code, not prose


@pytest.mark.parametrize("source, what", [("# @title Train\nprint(cfg)", "# @title"),
                                          ('#@title Export { display-mode: "form" }\nprint(cfg)', "# @title"),
                                          ('limit = 10  # @param {type:"integer"}\nprint(limit)', "# @param")])
def test_form_fields_need_the_form_view(run, source, what):
    nb = with_cell(source)
    assert run(nb) == (1, [f'cell 5:line 1: TB214 cell has a Colab form field ({what}) but no metadata "cellView": '
                           '"form"; Colab shows its code as a wall of text instead of the form'])
    nb["cells"][4]["metadata"]["cellView"] = "form"
    assert run(nb) == (0, [])


# ---------------------------------------------------------------------------------------------
# TB221 for the target Python; TB223 after a cell that does not parse

PEP701 = 'scores = {"loss": 1.0}\nprint(f"{scores["loss"]:.2f}")'  # valid on 3.12+, a SyntaxError on 3.11


@pytest.fixture
def python313():
    from trainbook.lint.grammar import TargetParser

    if TargetParser((3, 13)).confirm(["x = 1"]) is None and HOST_VERSION < (3, 13):
        pytest.skip("no Python 3.13 here (python3.13 on PATH, ~/.pyenv/versions/3.13*, or TRAINBOOK_PY313)")


def test_default_target_is_colabs_python_313(run, python313):
    assert run(with_cell(PEP701)) == (0, [])
    code, lines = run(with_cell(PEP701 + "\ndef f(:\n    pass"))
    assert lines == ["cell 5:line 3: TB221 cell does not parse as Python 3.13: invalid syntax"]


def test_older_target_version_rejects_newer_syntax(run, tmp_path):
    code, lines = run(with_cell(PEP701), "--target-version", "3.11")
    assert lines == ["cell 5:line 2: TB221 cell does not parse as Python 3.11: f-string: unmatched '['"]
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\ntarget-version = "3.11"\n')
    assert run(with_cell(PEP701))[1] == lines
    code, lines = run(with_cell("match cfg:\n    case _:\n        pass"), "--target-version", "3.9")
    assert lines == ["cell 5:line 3: TB221 cell does not parse as Python 3.9: Pattern matching is only supported in "
                     "Python 3.10 and greater"]


def test_without_python_313_the_check_says_so_once(run, tmp_path, monkeypatch, capsys):
    if HOST_VERSION >= (3, 13):
        pytest.skip("this Python parses 3.13 itself")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("TRAINBOOK_PY313", str(tmp_path / "missing-python"))
    nb = notebook(GOOD_CELLS + [("code", "a", PEP701), ("code", "b", "print(scores, undefined_name)")])
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    assert lint.main([str(tmp_path / "nb.ipynb")]) == 1
    out, err = capsys.readouterr()
    assert f"cell 5:line 2: TB221 cell does not parse as Python {HOST} (cannot check for 3.13 here): f-string: " \
           "unmatched '['" in out
    assert "cell 6:line 1: TB223 name 'undefined_name' is used before anything defines it" in out
    assert err.count("cannot check for Python 3.13 here") == 1


def test_names_are_checked_after_a_cell_that_does_not_parse(run):
    nb = notebook(GOOD_CELLS + [("code", "broken", "half = cfg.epochs // 2\nprint(half\nother = 1"),
                                ("code", "after", "print(half, other, never_defined)")])
    code, lines = run(nb, "--target-version", HOST)
    assert lines == [f"cell 5:line 2: TB221 cell does not parse as Python {HOST}: '(' was never closed",
                     "cell 6:line 1: TB223 name 'never_defined' is used before anything defines it; define or "
                     "import it in an earlier cell"]


# ---------------------------------------------------------------------------------------------
# TB224 swallowed imports; TB231 accepts try/except ImportError Colab guards

SWALLOWED = "try:\n    import wandb\nexcept ImportError:\n    pass"


def test_swallowed_import_used_later(run):
    nb = notebook(GOOD_CELLS + [("code", "import", SWALLOWED), ("code", "use", "print(cfg)\nwandb.init()")])
    assert run(nb) == (1, ["cell 5:line 2: TB224 'wandb' is imported inside try/except ImportError and the handler "
                           "(line 3) swallows the failure, but cell 6 line 2 uses it: a failed import then surfaces "
                           "as a NameError there; re-raise with a HINT (raise ImportError(\"pip install ...\") from e) "
                           "or bind a fallback in the handler"])


@pytest.mark.parametrize("handler, use", [
    ("    wandb = None", "if wandb is not None:\n    wandb.init()"),                      # a fallback
    ('    raise ImportError("pip install wandb") from None', "wandb.init()"),             # re-raised
    ("    HAVE_WANDB = False", "if HAVE_WANDB:\n    wandb.init()"),                       # a guard flag
    ("    pass", "print(cfg)"),                                                          # never used
    ("    pass", "import wandb\nwandb.init()"),                                          # imported again
    ("    pass", "try:\n    wandb.init()\nexcept NameError:\n    pass"),                # the use is guarded
])
def test_imports_that_are_not_swallowed_pass(run, handler, use):
    body = "try:\n    import wandb\n    HAVE_WANDB = True\nexcept ImportError:\n" + handler
    assert run(notebook(GOOD_CELLS + [("code", "import", body), ("code", "use", use)])) == (0, [])


@pytest.mark.parametrize("source", [
    "try:\n    from google.colab import drive\n    drive.mount('/content/drive')\nexcept ImportError:\n    pass",
    "try:\n    from google.colab import userdata\n    COLAB = True\nexcept ModuleNotFoundError:\n    COLAB = False\n"
    "if COLAB:\n    key = userdata.get('KEY')\n    !pip install -q wandb",
])
def test_try_except_import_error_is_a_colab_guard(run, source):
    assert run(with_cell(source)) == (0, [])


def test_try_that_does_not_catch_import_error_is_no_guard(run):
    code, lines = run(with_cell("try:\n    from google.colab import drive\nexcept ValueError:\n    pass"))
    assert only(lines, "TB231") == ["cell 5:line 2: TB231 importing google.colab outside an `if IN_COLAB:` block; "
                                    "Colab-only actions (google.colab, drive.mount, userdata, %pip/!pip) go under the "
                                    "guard (or in a try whose except ImportError sets the flag False)"]


# ---------------------------------------------------------------------------------------------
# TB252 repository URLs


def test_one_wrong_repository_url_among_three(run):
    wrong = "!git clone https://github.com/acme-old/demo.git"
    nb = notebook(GOOD_CELLS + [("code", "clone", "if IN_COLAB:\n    " + wrong)])
    assert run(nb) == (1, ["cell 5:line 2: TB252 https://github.com/acme-old/demo.git names the repository "
                           "acme-old/demo, but this notebook's repository is acme/demo (the Open-in-Colab badge in "
                           "cell 1); the badge, clone, install and raw URLs must all name one repository"])
    right = notebook(GOOD_CELLS + [("code", "clone", "if IN_COLAB:\n    !git clone https://github.com/acme/demo.git"),
                                   ("markdown", "links", "Data: https://raw.githubusercontent.com/acme/demo/main/d.csv"
                                                         "; model code from https://github.com/karpathy/nanoGPT")])
    assert run(right) == (0, [])


def test_configured_repository_wins_over_the_badge(run, tmp_path):
    code, lines = run(notebook(GOOD_CELLS), "--repository", "acme/demo-v2")
    assert lines == ["cell 1:line 3: TB252 https://colab.research.google.com/github/acme/demo names the repository "
                     "acme/demo, but this notebook's repository is acme/demo-v2 (--repository); the badge, clone, "
                     "install and raw URLs must all name one repository",
                     "cell 3:line 9: TB252 git+https://github.com/acme/demo names the repository acme/demo, but this "
                     "notebook's repository is acme/demo-v2 (--repository); the badge, clone, install and raw URLs "
                     "must all name one repository"]
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\nrepository = "https://github.com/acme/demo"\n')
    assert run(notebook(GOOD_CELLS)) == (0, [])


# ---------------------------------------------------------------------------------------------
# pathological input: a finding or exit 2, never a traceback


@pytest.mark.parametrize("source, message", [
    ("x = " + "a+" * 100_000 + "a", "TB221 cell is too deeply nested for Python's parser (RecursionError); split the "
                                    "expression into named parts"),
    ("x = " + "-" * 100_000 + "a", "TB221 cell is too deeply nested for Python's parser (MemoryError); split the "
                                   "expression into named parts"),
    ("x = " + "a+" * 400 + "a", "TB221 cell is not checked: it nests more than 300 levels deep; split the "
                                "expression into named parts"),
])
def test_deep_expressions_are_findings(run, source, message):
    nb = notebook(GOOD_CELLS + [("code", "deep", source), ("code", "after", "print(x, missing)")])
    code, lines = run(nb)
    assert lines == [f"cell 5:line 1: {message}",
                     "cell 6:line 1: TB223 name 'missing' is used before anything defines it; define or import it "
                     "in an earlier cell"]


def test_expression_just_under_the_limit_is_checked(run):
    code, lines = run(with_cell("x = " + "a+" * 250 + "a"))
    assert lines == ["cell 5:line 1: TB223 name 'a' is used before anything defines it; define or import it in an "
                     "earlier cell"]


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply to read (more than about 1000 levels)"),
    (json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"w": json.loads("[" * 500 + "]" * 500)}}),
     "JSON nested more than 64 levels deep; a notebook needs far fewer"),
])
def test_deeply_nested_json_exits_2_with_one_line(tmp_path, capsys, text, message):
    (tmp_path / "a.ipynb").write_text(text)
    assert lint.main([str(tmp_path / "a.ipynb")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"{tmp_path / 'a.ipynb'}: ") and message in err


# ---------------------------------------------------------------------------------------------
# rule selection, JSON output, settings


def codes(lines) -> list[str]:
    return [re.search(r"TB\d{3}", line).group(0) for line in lines]


def policy_broken() -> dict:
    """No cell tagged parameters (so no pinned ref either), outputs not stripped, and one bug."""
    nb = notebook(GOOD_CELLS + [("code", "x", "print(ghost)")])
    nb["cells"][1]["metadata"] = {"cellView": "form"}
    nb["cells"][3]["execution_count"] = 1
    return nb


GHOST = "cell 5:line 1: TB223 name 'ghost' is used before anything defines it; define or import it in an earlier cell"


def test_select_and_ignore_choose_codes_by_prefix(run):
    nb = policy_broken()
    assert codes(run(nb)[1]) == ["TB211", "TB241", "TB205", "TB223"]
    assert run(nb, "--ignore", "TB205,TB21", "--ignore", "TB241") == (1, [GHOST])
    assert codes(run(nb, "--select", "TB205")[1]) == ["TB205"]
    assert run(nb, "--select", "TB2", "--ignore", "TB2") == (0, [])         # a tie: ignore wins
    assert codes(run(nb, "--select", "TB21", "--ignore", "TB2")[1]) == ["TB211"]  # the longer prefix wins
    assert codes(run(nb, "--select", "ALL", "--ignore", "TB2")[1]) == []


def test_pyproject_switches_off_policy_rules_and_keeps_bug_rules(run, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\nignore = ["TB205", "TB21", "TB241"]\n')
    nb = policy_broken()
    assert run(nb) == (1, [GHOST])
    assert run(nb, "--select", "TB205") == (0, [])  # --select replaces `select`; `ignore` still applies
    (tmp_path / "pyproject.toml").write_text('[tool.trainbook.lint]\nselect = ["TB223", "TB205"]\n')
    assert codes(run(nb)[1]) == ["TB205", "TB223"]


@pytest.mark.parametrize("args, toml, message", [
    (["--select", "TB9"], "", "--select: unknown rule code 'TB9' (codes: TB100-TB252"),
    (["--ignore", "TB2233"], "", "--ignore: unknown rule code 'TB2233'; did you mean 'TB223'?"),
    ([], 'select = ["TB2O5"]', "[tool.trainbook.lint] select: unknown rule code 'TB2O5'"),
    ([], 'packges = ["x"]', "unknown key(s) ['packges']; did you mean 'packages'?"),
    ([], "select = 5", "select: expected a list of strings; got 5"),
    ([], 'target-version = "2.7"', 'target version must look like "3.13" (3.8 or newer); got \'2.7\''),
    (["--repository", "not a repo"], "", "--repository: repository must be 'owner/name'"),
])
def test_bad_settings_exit_2_naming_the_setting(run, tmp_path, capsys, args, toml, message):
    (tmp_path / "pyproject.toml").write_text(f"[tool.trainbook.lint]\n{toml}\n")
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook(GOOD_CELLS)))
    assert lint.main([str(tmp_path / "nb.ipynb"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_json_format(run, tmp_path, capsys):
    (tmp_path / "nb.ipynb").write_text(json.dumps(with_cell("print(ghost)")))
    (tmp_path / "bad.ipynb").write_text("{")
    assert lint.main([str(tmp_path / "nb.ipynb"), str(tmp_path / "bad.ipynb"), "--format", "json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "findings": [{"path": str(tmp_path / "nb.ipynb"), "cell": 5, "line": 1, "code": "TB223",
                      "message": "name 'ghost' is used before anything defines it; define or import it in an "
                                 "earlier cell"}],
        "unreadable": [{"path": str(tmp_path / "bad.ipynb"),
                        "message": f"{tmp_path / 'bad.ipynb'}: invalid JSON at line 1 column 2: Expecting property "
                                   "name enclosed in double quotes"}],
        "notes": [], "files_checked": 2}


def test_readme_lists_every_code():
    from trainbook.lint import CODES

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Lint notebooks"):]
    listed = re.findall(r"^\| (TB\d{3}) \|", section, flags=re.MULTILINE)
    assert listed == sorted(CODES)
