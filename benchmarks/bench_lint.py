"""Notebook lint speed: a realistic 51-cell notebook (target < 0.3 s) and 50 notebooks in one call (< 5 s).

    python benchmarks/bench_lint.py

The 51-cell notebook is notebooks/training.ipynb (its 24 cells) followed by its story again for
two more runs (data, model, config, training, results, drift, search, export: 27 cells), the
variables renamed per run, so every rule and the first-party API check have real work and the
notebook is clean. The 50 notebooks are 50 such notebooks with other names. Variants, interleaved
round by round (medians with min-max):

- lint_file on the 51-cell notebook with fresh settings: the package model is read from source
  again (this is the 0.3 s target; imports are warm, as in an editor or a pre-commit hook);
- the same with the package model already read (what each further notebook of a call costs);
- main() over the folder of 50 notebooks: one call, fresh settings (the 5 s target);
- `python -m trainbook.lint` as a new process on each (interpreter start and imports included);
- the floor: json.loads and ast.parse of every code cell, the least any notebook linter does.

Wall time and CPU time (this process and its children) are printed: on a shared machine the CPU
time says what the lint costs when the wall time is stretched by other work.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

from trainbook.lint import lint_file, load_settings, main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "training.ipynb"
ROUNDS = 6
TARGET_ONE_S, TARGET_MANY_S, MANY = 0.3, 5.0, 50
STORY = slice(5, None)  # the cells after setup and environment: "## Data" to the export
RUN_NAMES = {"data", "spec", "model", "training_config", "run_dir", "trainer", "result", "curves_path", "first",
             "last", "tracking", "reference_profile", "drift_report", "drift_path", "search_result",
             "best_search_config", "search_space", "search_plot_path", "best", "bundle_dir", "bundle_model",
             "bundle_meta", "bundle_parity", "samples", "inference"}


def rename(source: str, suffix: str) -> str:
    """Rename the story's variables (not attributes, not keyword names) by adding `suffix`."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines, depth, hits = source.split("\n"), 0, []
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.NAME and tok.string in RUN_NAMES:
            before = tokens[i - 1].string if i else ""
            after = tokens[i + 1].string if i + 1 < len(tokens) else ""
            if before != "." and not (depth and after == "="):
                hits.append(tok.start)
    for row, col in sorted(hits, reverse=True):
        line = lines[row - 1]
        end = col + len(re.match(r"\w+", line[col:]).group(0))
        lines[row - 1] = line[:end] + suffix + line[end:]
    return "\n".join(lines)


def realistic_notebook(variant: int) -> dict:
    """51 cells: the training notebook, then its story again twice (the second time up to the model cell)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    story = nb["cells"][STORY]
    extra = story + story[: 51 - len(nb["cells"]) - len(story)]
    for k, cell in enumerate(extra):
        suffix = f"_v{variant}r{1 + k // len(story)}"
        cell = json.loads(json.dumps(cell))
        cell["id"] = f"{cell['id']}{suffix}"
        if cell["cell_type"] == "code":
            text = rename("".join(cell["source"]), suffix)
            cell["source"] = text.splitlines(keepends=True)
        nb["cells"].append(cell)
    assert len(nb["cells"]) == 51
    return nb


def floor(paths) -> None:
    """json.loads and ast.parse of every code cell (magic lines made `pass`)."""
    import ast

    for path in paths:
        for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                text = "".join(cell["source"])
                ast.parse(re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", text))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the lint processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def quiet(fn):
    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            fn()
    return run


def cli(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "trainbook.lint", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the lint found something in the generated notebooks:\n{done.stdout}{done.stderr}")


def main_bench() -> dict:
    """Run the interleaved rounds, print the table, return {variant: {median_s, min_s, max_s, cpu_s}}."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / ".git").mkdir()  # the Colab badge is checked relative to the repository root
        one, many = tmp / "one" / "training.ipynb", tmp / "many"
        one.parent.mkdir()
        many.mkdir()
        one.write_text(json.dumps(realistic_notebook(0), indent=1))
        for k in range(MANY):
            (many / f"nb{k:02d}.ipynb").write_text(json.dumps(realistic_notebook(k + 1), indent=1))
        warm = load_settings([str(one)])
        found = lint_file(one, warm)[0]
        if found:  # the badge names notebooks/training.ipynb; the copies live elsewhere
            found = [f for f in found if f.code != "TB251"]
        assert not found, f"the generated notebook is not clean: {found}"
        variants = {
            "floor: json + ast.parse, 1 notebook": lambda: floor([one]),
            "lint_file, 1 notebook, package model read": lambda: lint_file(one, load_settings([str(one)])),
            "lint_file, 1 notebook, model already read": lambda: lint_file(one, warm),
            "floor: json + ast.parse, 50 notebooks": lambda: floor(sorted(many.glob("*.ipynb"))),
            "main(), 50 notebooks in one call": quiet(lambda: main([str(many), "--ignore", "TB251"])),
            "new process, 1 notebook": lambda: cli(str(one), "--ignore", "TB251"),
            "new process, 50 notebooks": lambda: cli(str(many), "--ignore", "TB251"),
        }
        samples = {name: [] for name in variants}
        for name, fn in variants.items():
            fn()  # warm-up: imports, the schema, the page cache
        for r in range(ROUNDS):
            order = list(variants.items())
            for name, fn in order[r % len(order):] + order[: r % len(order)]:
                samples[name].append(timed(fn))
    results = {}
    for name, values in samples.items():
        walls = [w for w, _ in values]
        results[name] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                         "cpu_s": statistics.median(c for _, c in values)}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    width = max(map(len, results))
    print(f"notebook lint, 51-cell notebook (target < {TARGET_ONE_S} s) and {MANY} notebooks in one call "
          f"(target < {TARGET_MANY_S} s); {ROUNDS} interleaved rounds; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"{'variant':<{width}}  {'median s':>9}  {'min-max s':>15}  {'cpu s':>7}")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['median_s']:>9.3f}  {r['min_s']:>7.3f}-{r['max_s']:.3f}  {r['cpu_s']:>7.3f}")
    one_s = results["lint_file, 1 notebook, package model read"]["median_s"]
    many_s = results["main(), 50 notebooks in one call"]["median_s"]
    print(f"lint / floor: {one_s / results['floor: json + ast.parse, 1 notebook']['median_s']:.1f}x (1 notebook), "
          f"{many_s / results['floor: json + ast.parse, 50 notebooks']['median_s']:.1f}x (50 notebooks)")
    results["within_target"] = one_s < TARGET_ONE_S and many_s < TARGET_MANY_S
    return results


if __name__ == "__main__":
    main_bench()
