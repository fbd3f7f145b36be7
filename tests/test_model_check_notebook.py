"""Execute notebooks/model_check.ipynb with papermill and assert on the verdicts it records in
<run_dir>/record.json: the built-in model of each task, and nanoGPT-shaped model files with one
deliberate bug each (attends to the future, a branch behind .detach(), logits x100 at init)."""

import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "model_check.ipynb"

# nanoGPT's model.py structure (transformer ModuleDict with wte/wpe/h/ln_f, c_attn/c_proj, SDPA,
# weight tying, std 0.02 init with scaled c_proj), returning the logits of every position.
MODEL_PY = '''\
"""A small nanoGPT-shaped GPT over bytes."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=IS_CAUSAL)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(n_embd), CausalSelfAttention(n_embd, n_head)
        self.ln_2, self.mlp = nn.LayerNorm(n_embd), MLP(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size=256, block_size=128, n_embd=48, n_head=4, n_layer=2):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd), wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)]), ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        EXTRA_MODULE
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        HEAD_INIT

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        EXTRA_FORWARD
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss
'''
BUGS = {
    "sees_future": {"IS_CAUSAL": "False"},
    "detached_branch": {"EXTRA_MODULE": "self.adapter = nn.Linear(n_embd, n_embd)",
                        "EXTRA_FORWARD": "x = x + self.adapter(x).detach()"},
    "logits_x100": {"HEAD_INIT": "self.lm_head.weight.data.mul_(100.0)"},
}


def model_file(tmp_path, bug: str) -> Path:
    source = MODEL_PY
    for key, value in {"IS_CAUSAL": "True", "EXTRA_MODULE": "pass", "EXTRA_FORWARD": "pass", "HEAD_INIT": "pass",
                       **BUGS[bug]}.items():
        source = source.replace(key, value)
    path = tmp_path / f"{bug}.py"
    path.write_text(source)
    return path


def run_model_check(tmp_path, **params):
    import papermill as pm

    params = {"output_dir": str(tmp_path / "runs"), **params}
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, cwd=str(ROOT / "notebooks"),
                        progress_bar=False, kernel_name="python3")
    run_dir = tmp_path / "runs" / params.get("run_name", "model-check")
    return nbformat.read(out, as_version=4), json.loads((run_dir / "record.json").read_text()), run_dir


def printed(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def test_committed_model_check_notebook_has_stripped_outputs_and_one_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.id for c in nb.cells if "parameters" in c.metadata.get("tags", [])] == ["parameters"]


def test_both_notebooks_share_the_setup_cells():
    training = nbformat.read(ROOT / "notebooks" / "training.ipynb", as_version=4)
    check = nbformat.read(NOTEBOOK, as_version=4)
    setup = lambda nb: [c.source for c in nb.cells if c.id in ("setup-md", "setup")]  # noqa: E731
    assert len(setup(check)) == 2
    drive = [line for line in setup(training)[1].splitlines() if "drive" in line]  # the Drive mount: training only
    assert drive and not any("drive" in line for line in setup(check)[1].splitlines())
    without_drive = [line for line in setup(training)[1].splitlines() if line not in drive and line.strip()]
    assert without_drive == [line for line in setup(check)[1].splitlines() if line.strip()]
    assert setup(training)[0].startswith(setup(check)[0]) and "persist_dir" not in setup(check)[0]


@pytest.mark.parametrize("task", ["lm", "text-cls", "vision-cls"])
def test_built_in_model_of_each_task_has_no_failing_check(task, tmp_path):
    nb, record, run_dir = run_model_check(tmp_path, task=task)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    checks = record["checks"]
    assert list(checks) == sorted(["shapes", "causal_mask", "initial_loss", "gradient_flow", "numerics",
                                   "overfit_one_batch", "lr_range", "memory_and_speed", "attention",
                                   "noise_robustness"])
    assert "fail" not in checks.values(), record["check_hints"]
    assert checks["lr_range"] == "skip" and record["suggested_lr"] is None  # quick level
    assert checks["causal_mask"] == ("pass" if task == "lm" else "skip")
    assert checks["attention"] == ("skip" if task == "vision-cls" else "pass")
    assert record["overall"] in ("pass", "warn") and record["model_class"] == {"lm": "GPT", "text-cls": "TextClassifier",
                                                                               "vision-cls": "VisionCNN"}[task]
    saved = json.loads((run_dir / "model_check.json").read_text())
    assert {k: v["verdict"] for k, v in saved["checks"].items()} == checks
    assert (run_dir / "model_check.png").stat().st_size > 10_000
    assert printed(nb.cells[-1]).splitlines()[-1].startswith(f"overall: {record['overall']} (")


def test_a_model_that_sees_the_future_fails_causal_mask(tmp_path):
    _, record, _ = run_model_check(tmp_path, model_source=str(model_file(tmp_path, "sees_future")), model_class="GPT")
    assert record["checks"]["causal_mask"] == "fail" and "sees the future" in record["check_hints"]["causal_mask"]
    assert record["overall"] == "fail" and record["checks"]["gradient_flow"] == "pass"


def test_a_detached_branch_fails_gradient_flow_naming_the_parameter(tmp_path):
    nb, record, _ = run_model_check(tmp_path, model_source=str(model_file(tmp_path, "detached_branch")),
                                    model_class="GPT")
    assert record["checks"]["gradient_flow"] == "fail"
    assert "no gradient for adapter.weight, adapter.bias" in record["check_hints"]["gradient_flow"]
    assert record["checks"]["causal_mask"] == "pass"
    assert "fix gradient_flow: no gradient for adapter.weight" in printed(nb.cells[-1])


def test_logits_times_100_at_init_fail_initial_loss(tmp_path):
    _, record, _ = run_model_check(tmp_path, model_source=str(model_file(tmp_path, "logits_x100")), model_class="GPT")
    assert record["checks"]["initial_loss"] in ("fail", "warn")
    assert "too confident at init" in record["check_hints"]["initial_loss"]
    assert record["checks"]["causal_mask"] == "pass" and record["checks"]["gradient_flow"] != "fail"


def test_model_size_and_seed_choose_the_model_and_the_inputs(tmp_path):
    import trainbook as tb

    _, record, _ = run_model_check(tmp_path, task="vision-cls", model_size="small", seed=1, run_name="small-seed1")
    data = tb.load_task_data("vision-cls", seed=1, limit=400)
    model = tb.build_model(data.spec, size="small", seed=1)
    assert record["parameters"] == tb.count_parameters(model) != tb.count_parameters(tb.build_model(data.spec, "tiny"))
    here = tb.check_model(model, data.spec, data=data, seed=1, checks=["shapes", "causal_mask", "initial_loss"])
    assert record["check_numbers"]["initial_loss"] == here["initial_loss"].numbers
    other = tb.check_model(tb.build_model(data.spec, size="small", seed=0), data.spec, data=data, seed=0,
                           checks=["shapes", "causal_mask", "initial_loss"])
    assert record["check_numbers"]["initial_loss"]["loss"] != other["initial_loss"].numbers["loss"]


@pytest.mark.slow
def test_full_level_suggests_a_learning_rate_and_passes_it_on(tmp_path):
    nb, record, _ = run_model_check(tmp_path, task="vision-cls", level="full", run_name="full")
    assert record["checks"]["lr_range"] == "pass" and 1e-5 < record["suggested_lr"] < 1.0
    assert "fail" not in record["checks"].values(), record["check_hints"]
    text = printed(nb.cells[-1])
    assert text.startswith(f"suggested learning_rate: {record['suggested_lr']:.2g}")
    assert f"-p learning_rate {record['suggested_lr']:.2g}" in text
