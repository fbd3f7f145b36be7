"""Tests for trainbook.checks: each check with a model that passes and one that fails (or warns),
the report (table, dict, figure) and check_model's promises (model restored, RNG untouched).

The language models are nanoGPT-shaped (wte/wpe, c_attn/c_proj, F.scaled_dot_product_attention,
forward(idx, targets=None) -> (logits, loss)) with one switch per bug.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import trainbook as tb
from trainbook.checks import CHECKS, CheckResult, ModelReport
from trainbook.checks.attention import head_entropy, sdpa_weights
from trainbook.checks.numerics import low_precision
from trainbook.checks.speed import device_name

LM, TEXT, VISION = (tb.TaskSpec.preset(t) for t in ("lm", "text-cls", "vision-cls"))


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, causal=True, scale=None):
        super().__init__()
        self.n_head, self.causal, self.scale = n_head, causal, scale
        self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, causal, scale):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = Attention(n_embd, n_head, causal, scale)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's shape; causal=False sees the future, head_scale multiplies the output layer at init,
    detached_gate adds a branch behind .detach(), last_only returns the last position without targets."""

    def __init__(self, vocab_size=256, block_size=128, n_embd=32, n_head=4, n_layer=2, causal=True, head_scale=1.0,
                 detached_gate=False, last_only=False, attn_scale=None):
        super().__init__()
        self.block_size, self.last_only = block_size, last_only
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, causal, attn_scale) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.gate = nn.Linear(n_embd, n_embd) if detached_gate else None
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
        with torch.no_grad():
            self.lm_head.weight.mul_(head_scale)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        assert T <= self.block_size, f"Cannot forward sequence of length {T}, block size is only {self.block_size}"
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        if self.gate is not None:
            x = x + self.gate(x).detach()
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        if targets is None and self.last_only:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


class PixelNet(nn.Module):
    """A small vision classifier; `kind` picks a bug."""

    def __init__(self, kind="ok"):
        super().__init__()
        self.kind = kind
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.bias = nn.Parameter(torch.zeros(10))
        self.alpha = nn.Parameter(torch.zeros(()) if kind == "zero-gate" else torch.ones(()))
        self.unused = nn.Parameter(torch.zeros(3)) if kind == "unused" else None
        self.root = nn.Parameter(torch.zeros(())) if kind == "sqrt" else None

    def forward(self, pixel_values):
        x = pixel_values
        if self.kind == "bias-only":
            return self.bias.expand(x.shape[0], 10)
        if self.kind == "bf16-cancel":  # a bf16 linear output plus 1000 keeps ~3 significant bits
            return (self.net(x) + 1000.0) - 1000.0
        if self.kind == "log1p":  # NaN below -1: only the loud noise input goes there
            x = torch.log1p(x)
        out = self.alpha * self.net(x) + self.bias
        if self.kind == "sqrt":
            out = out + torch.sqrt(self.root)  # finite value, infinite gradient at 0
        if self.kind == "fragile":
            out = out + torch.sin(1000.0 * self.net[1](x.flatten(1)))[:, :10]
        return out


class DeepSigmoid(nn.Module):
    def __init__(self, depth=10):
        super().__init__()
        layers = [nn.Flatten()] + [m for _ in range(depth) for m in (nn.Linear(64, 64), nn.Sigmoid())]
        self.net = nn.Sequential(*layers, nn.Linear(64, 10))

    def forward(self, pixel_values):
        return self.net(pixel_values)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)  # the test models' init


@pytest.fixture(scope="module")
def digits():
    return tb.load_task_data("vision-cls", seed=0, limit=256)


def check(model, spec, *names, **kwargs) -> ModelReport:
    return tb.check_model(model, spec, checks=list(names), **kwargs)


# --- shapes ---

def test_shapes_pass_for_the_built_in_models_and_name_the_over_length_error():
    for spec in (LM, TEXT, VISION):
        r = check(tb.build_model(spec, "tiny"), spec, "shapes")["shapes"]
        assert r.verdict == "pass", r.hint
    r = check(tb.build_model(LM, "tiny"), LM, "shapes")["shapes"]
    assert r.numbers["over_length"] == "ValueError" and r.numbers["largest_logits"] == "7x128x256"


def test_shapes_see_nanogpt_as_the_trainer_does_and_fail_a_model_that_only_returns_the_last_position():
    r = check(GPT(last_only=True), LM, "shapes")["shapes"]   # nanoGPT: every position once targets are passed
    assert r.verdict == "pass", r.hint
    model = GPT()
    full = model.forward
    model.forward = lambda input_ids: full(input_ids)[0][:, [-1], :]   # no targets argument: last position only
    r = check(model, LM, "shapes")["shapes"]
    assert r.verdict == "fail"
    assert "GPT returned logits of shape (1, 1, 256) for input_ids of shape (1, 128)" in r.hint


def test_shapes_warn_when_one_token_too_many_gives_an_unhelpful_error():
    model = GPT()
    def no_length_check(idx, targets=None):  # the position lookup itself fails at block_size + 1
        return model.lm_head(model.wte(idx) + model.wpe(torch.arange(idx.shape[1]))), None
    model.forward = no_length_check
    r = check(model, LM, "shapes")["shapes"]
    assert r.verdict == "warn" and r.numbers["over_length"] == "IndexError"
    assert "index out of range in self" in r.hint and "raise ValueError" in r.hint


def test_shapes_fail_for_a_classifier_with_the_wrong_number_of_classes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))
    r = check(model, VISION, "shapes")["shapes"]
    assert r.verdict == "fail" and "logits (1, 7), expected (1, 10)" in r.hint


# --- causal mask ---

def test_causal_mask_passes_for_causal_models_and_fails_for_one_that_sees_the_future():
    ok = check(GPT(), LM, "causal_mask")["causal_mask"]
    assert ok.verdict == "pass" and ok.numbers["max_abs_diff"] <= 1e-5
    bad = check(GPT(causal=False), LM, "causal_mask")["causal_mask"]
    assert bad.verdict == "fail" and bad.numbers["max_abs_diff"] > 1e-3
    assert bad.numbers["first_leak"] == "t=0" and "sees the future" in bad.hint


def test_causal_mask_is_skipped_with_a_reason_for_classifiers():
    r = check(tb.build_model(TEXT, "tiny"), TEXT, "causal_mask")["causal_mask"]
    assert r.verdict == "skip" and "classification" in r.hint


# --- initial loss ---

def test_initial_loss_is_near_ln_vocab_for_a_good_init_and_fails_with_logits_times_100():
    ok = check(GPT(), LM, "initial_loss")["initial_loss"]
    assert ok.verdict == "pass" and abs(ok.numbers["ratio"] - 1) < 0.1
    assert ok.numbers["expected"] == pytest.approx(math.log(256))
    bad = check(GPT(head_scale=100.0), LM, "initial_loss")["initial_loss"]
    assert bad.verdict == "fail" and bad.numbers["ratio"] > 3 and "too confident" in bad.hint


def test_initial_loss_warns_between_30_percent_and_3x():
    r = check(GPT(head_scale=40.0), LM, "initial_loss")["initial_loss"]
    assert 1.3 < r.numbers["ratio"] <= 3 and r.verdict == "warn"


def test_initial_loss_fails_for_a_model_that_reads_its_targets():
    class NextTokenCopier(nn.Module):  # logits at t point at token t+1: it sees its own target
        def __init__(self):
            super().__init__()
            self.temperature = nn.Parameter(torch.tensor(20.0))

        def forward(self, input_ids):
            return F.one_hot(torch.roll(input_ids, -1, dims=1), 256).float() * self.temperature
    r = check(NextTokenCopier(), LM, "initial_loss")["initial_loss"]
    assert r.verdict == "fail" and r.numbers["ratio"] < 1 / 3 and "see its targets" in r.hint


# --- gradient flow ---

def test_gradient_flow_passes_for_the_built_in_models():
    for spec in (LM, TEXT, VISION):
        r = check(tb.build_model(spec, "tiny"), spec, "gradient_flow")["gradient_flow"]
        assert r.verdict == "pass", r.hint
        assert r.numbers["no_grad"] == 0 and r.details["layers"] and all(v > 0 for v in r.details["norms"])


def test_gradient_flow_fails_naming_a_detached_branch():
    r = check(GPT(detached_gate=True), LM, "gradient_flow")["gradient_flow"]
    assert r.verdict == "fail" and r.numbers["no_grad"] == 2
    assert r.details["missing"] == ["gate.weight", "gate.bias"] and "gate.weight, gate.bias" in r.hint


def test_gradient_flow_fails_naming_an_unused_parameter_and_a_non_finite_gradient():
    r = check(PixelNet("unused"), VISION, "gradient_flow")["gradient_flow"]
    assert r.verdict == "fail" and r.details["missing"] == ["unused"] and "no gradient for unused" in r.hint
    r = check(PixelNet("sqrt"), VISION, "gradient_flow")["gradient_flow"]
    assert r.verdict == "fail" and r.details["non_finite"] == ["root"] and "non-finite gradient in root" in r.hint


def test_gradient_flow_warns_on_zero_gradients_and_vanishing_layers():
    r = check(PixelNet("zero-gate"), VISION, "gradient_flow")["gradient_flow"]
    assert r.verdict == "warn" and r.details["zero"] == ["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"]
    r = check(DeepSigmoid(), VISION, "gradient_flow")["gradient_flow"]
    assert r.verdict == "warn" and r.numbers["layer_spread"] > 1e3 and "vanishing" in r.hint


# --- numerics ---

def test_numerics_pass_with_bf16_within_the_stated_tolerance():
    r = check(tb.build_model(LM, "tiny"), LM, "numerics")["numerics"]
    assert r.verdict == "pass" and r.numbers["precision"] == "bf16" and r.numbers["tolerance"] == 0.05
    assert 0 < r.numbers["bf16_rel_diff"] <= 0.05


def test_numerics_fail_on_nan_for_extreme_inputs_and_warn_on_bf16_cancellation():
    r = check(PixelNet("log1p"), VISION, "numerics")["numerics"]
    assert r.verdict == "fail" and "inputs: noise std 10;" in r.hint
    r = check(PixelNet("bf16-cancel"), VISION, "numerics")["numerics"]
    assert r.verdict == "warn" and r.numbers["bf16_rel_diff"] > 0.05


def test_low_precision_is_bf16_on_cpu():
    assert low_precision(torch.device("cpu")) == "bf16"


def test_device_name_counts_cpu_threads():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert device_name(torch.device("cpu")) == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert device_name(torch.device("cpu")) == "cpu (2 threads)"
    finally:
        torch.set_num_threads(threads)


# --- overfit one batch, lr range ---

def test_overfit_one_batch_passes_for_a_real_model_and_fails_for_one_that_cannot_learn(digits):
    ok = check(tb.build_model(VISION, "tiny"), VISION, "overfit_one_batch", data=digits)["overfit_one_batch"]
    assert ok.verdict == "pass" and ok.numbers["ratio"] <= 0.1 and ok.numbers["steps"] <= 60
    bad = check(PixelNet("bias-only"), VISION, "overfit_one_batch", data=digits)["overfit_one_batch"]
    assert bad.verdict == "fail" and bad.numbers["ratio"] > 0.5 and "cannot memorise" in bad.hint


def test_lr_range_runs_at_full_level_only_and_suggests_a_tenth_of_the_best_lr(digits):
    assert check(tb.build_model(VISION, "tiny"), VISION, "lr_range")["lr_range"].verdict == "skip"
    report = check(tb.build_model(VISION, "tiny"), VISION, "lr_range", data=digits, level="full")
    r = report["lr_range"]
    assert r.verdict == "pass" and r.numbers["min_loss"] < 0.9 * r.numbers["start_loss"]
    assert r.numbers["suggested_lr"] == pytest.approx(r.numbers["lr_at_min"] / 10)
    assert 1e-5 < report.suggested_lr < 1.0 and report.suggested_lr == r.numbers["suggested_lr"]
    assert len(r.details["lrs"]) == len(r.details["losses"]) == r.numbers["steps"] <= 200


def test_lr_range_warns_when_no_learning_rate_lowers_the_loss():
    r = check(PixelNet("bias-only"), VISION, "lr_range", level="full")["lr_range"]  # random labels
    assert r.verdict == "warn" and "is a guess" in r.hint


# --- memory and speed ---

def test_memory_and_speed_measures_activation_memory_growing_with_the_batch_on_the_named_device():
    r = check(tb.build_model(LM, "tiny"), LM, "memory_and_speed")["memory_and_speed"]
    assert r.verdict == "pass" and r.numbers["device"].startswith("cpu (")
    assert r.details["batch"] == [1, 4, 16]
    assert r.numbers["parameters"] == tb.count_parameters(tb.build_model(LM, "tiny"))
    act = r.details["activation_mb"]
    assert 0 < act[0] < act[1] < act[2] and 8 < act[2] / act[0] < 24  # about linear in the batch
    assert r.numbers["peak_mb"] > 0 and r.numbers["latency_ms_b1"] > 0
    assert r.numbers["tokens_per_s"] == pytest.approx(128 * r.numbers["samples_per_s"])


def test_memory_and_speed_warns_with_the_largest_batch_that_fits():
    class Small(PixelNet):
        def forward(self, pixel_values):
            if pixel_values.shape[0] >= 16:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().forward(pixel_values)
    r = check(Small(), VISION, "memory_and_speed")["memory_and_speed"]
    assert r.verdict == "warn" and r.details["batch"] == [1, 4] and "largest that fit is 4" in r.hint


# --- attention ---

def test_attention_reads_scaled_dot_product_attention_in_the_built_in_models():
    r = check(tb.build_model(LM, "tiny"), LM, "attention")["attention"]
    assert r.verdict == "pass" and r.numbers["source"] == "F.scaled_dot_product_attention"
    assert (r.numbers["layers"], r.numbers["heads"]) == (2, 8) and r.numbers["min_entropy"] > 0.9
    assert F.scaled_dot_product_attention.__name__ == "scaled_dot_product_attention"  # restored


def test_attention_reads_multihead_attention_and_flags_collapsed_heads():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(256, 32)
            self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2,
                                             enable_nested_tensor=False)
            self.head = nn.Linear(32, 6)

        def forward(self, input_ids):
            return self.head(self.enc(self.emb(input_ids)).mean(1))
    r = check(Encoder(), TEXT, "attention")["attention"]
    assert r.verdict == "pass" and r.numbers["source"] == "nn.MultiheadAttention" and r.numbers["heads"] == 8
    collapsed = check(GPT(attn_scale=5000.0), LM, "attention")["attention"]  # q.k blown up: one key per query
    assert collapsed.verdict == "warn" and collapsed.numbers["collapsed"] == 8 and "8 of 8 heads" in collapsed.hint


def test_attention_reads_a_transformers_gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=256, n_positions=128, n_embd=32, n_layer=2, n_head=4)
    r = check(transformers.GPT2LMHeadModel(config), LM, "attention", "causal_mask")
    assert r["attention"].verdict == "pass" and r["attention"].numbers["heads"] == 8
    assert r["causal_mask"].verdict == "pass"


def test_attention_is_skipped_with_a_reason_for_a_cnn():
    r = check(tb.build_model(VISION, "tiny"), VISION, "attention")["attention"]
    assert r.verdict == "skip" and "no attention weights" in r.hint


def test_head_entropy_is_one_for_uniform_and_zero_for_one_hot_attention():
    L = 6
    causal_uniform = sdpa_weights(torch.zeros(1, 2, L, 4), torch.zeros(1, 2, L, 4), is_causal=True)
    assert torch.allclose(head_entropy(causal_uniform, causal=True), torch.ones(2))
    one_hot = torch.eye(L).expand(1, 2, L, L)
    assert torch.allclose(head_entropy(one_hot, causal=True), torch.zeros(2))


# --- noise robustness ---

def test_noise_robustness_reports_agreement_and_only_ever_warns(digits):
    ok = check(tb.build_model(VISION, "tiny"), VISION, "noise_robustness", data=digits)["noise_robustness"]
    assert ok.verdict == "pass" and ok.numbers["agreement"] >= 0.8
    fragile = check(PixelNet("fragile"), VISION, "noise_robustness", data=digits)["noise_robustness"]
    assert fragile.verdict == "warn" and fragile.numbers["agreement"] < 0.8


# --- the report and check_model ---

def test_check_model_restores_weights_mode_and_the_global_rng(digits):
    model = tb.build_model(VISION, "tiny")
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    report = tb.check_model(model, VISION, data=digits, checks=["gradient_flow", "overfit_one_batch", "initial_loss"])
    assert torch.equal(torch.rand(3), expected_next)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert report.verdicts == {"gradient_flow": "pass", "overfit_one_batch": "pass", "initial_loss": "pass"}


def test_a_check_that_raises_becomes_a_fail_and_the_others_still_run():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, pixel_values):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x64 and 32x10)")
    report = check(Broken(), VISION, "initial_loss", "numerics", "attention")
    assert report.verdicts == {"initial_loss": "fail", "numerics": "fail", "attention": "fail"}
    assert "RuntimeError: mat1 and mat2 shapes" in report["numerics"].hint
    assert "Traceback" in report["numerics"].details["traceback"]


def test_check_model_rejects_a_bad_level_check_name_or_spec():
    model = tb.build_model(VISION, "tiny")
    with pytest.raises(ValueError, match="level must be one of 'quick', 'full'; got 'fast'"):
        tb.check_model(model, VISION, level="fast")
    with pytest.raises(ValueError, match="unknown check\\(s\\) 'causal'; choose from shapes, causal_mask"):
        tb.check_model(model, VISION, checks=["causal"])
    with pytest.raises(ValueError, match="spec must be a TaskSpec or a task name; got dict"):
        tb.check_model(model, {"name": "lm"})


def test_report_table_dict_failed_and_figure():
    report = tb.check_model(GPT(detached_gate=True), LM, checks=["shapes", "causal_mask", "gradient_flow",
                                                                  "memory_and_speed", "lr_range"])
    assert report.failed == ["gradient_flow"] and report.overall == "fail" and report.suggested_lr is None
    lines = str(report).splitlines()
    assert lines[0].startswith("model check (quick) of GPT: ") and "on cpu (" in lines[0]
    assert lines[1].split() == ["check", "verdict", "numbers", "hint"]
    assert lines[3].startswith("shapes") and " pass " in lines[3]
    assert lines[-1] == "overall: fail (3 pass, 1 fail, 1 skip); failed: gradient_flow"
    d = json.loads(json.dumps(report.to_dict()))
    assert d["overall"] == "fail" and list(d["checks"]) == ["shapes", "causal_mask", "gradient_flow",
                                                            "memory_and_speed", "lr_range"]
    assert d["checks"]["gradient_flow"]["numbers"]["no_grad"] == 2
    fig = report.figure()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["gradient norm per layer: fail", "LR range test",
                          f"memory and speed on {device_name(torch.device('cpu'))}"]
    assert len(fig.axes[0].patches) == len(report["gradient_flow"].details["layers"])
    assert tb.plot_model_checks(report).axes[0].get_title() == titles[0]


def test_check_result_rejects_an_unknown_verdict():
    with pytest.raises(ValueError, match="verdict must be one of 'pass', 'warn', 'fail', 'skip'; got 'ok'"):
        CheckResult("shapes", "ok", {}, "")


def test_every_check_is_listed_in_the_order_the_notebook_shows():
    assert list(CHECKS) == ["shapes", "causal_mask", "initial_loss", "gradient_flow", "numerics",
                            "overfit_one_batch", "lr_range", "memory_and_speed", "attention", "noise_robustness"]
