"""Attention check: per-head entropy of the attention weights, flagging collapsed heads.

    result = check_attention(probe, full=False)

The weights come from, in this order: `nn.MultiheadAttention` modules (asked for per-head
weights through hooks), a forward that takes `output_attentions=True` (transformers models),
or calls to `F.scaled_dot_product_attention` during one forward (the built-in models, nanoGPT),
whose weights are recomputed from q and k on the side; the model's own outputs are untouched.
A model that computes attention some other way is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import inspect
import math

import torch
import torch.nn.functional as F

from ..engine.loop import to_device
from .report import CheckResult

COLLAPSED_ENTROPY = 0.1  # a head whose mean normalised entropy is below this attends to ~one key


@contextlib.contextmanager
def _mha_hooks(model, captured: list):
    """Ask every nn.MultiheadAttention for unaveraged weights and collect them."""
    def pre(module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def post(module, args, kwargs, output):
        weights = output[1].detach().float()
        captured.append(weights if weights.dim() == 4 else weights.unsqueeze(0))  # unbatched: (heads, L, S)

    handles = []
    for m in model.modules():
        if isinstance(m, torch.nn.MultiheadAttention):
            handles += [m.register_forward_pre_hook(pre, with_kwargs=True),
                        m.register_forward_hook(post, with_kwargs=True)]
    try:
        yield bool(handles)
    finally:
        for h in handles:
            h.remove()


def sdpa_weights(q, k, attn_mask=None, is_causal=False, scale=None, enable_gqa=False) -> torch.Tensor:
    """The attention probabilities F.scaled_dot_product_attention uses (without dropout)."""
    q, k = q.detach().float(), k.detach().float()
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)
    scores = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    L, S = scores.shape[-2:]
    if is_causal:
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    return scores.softmax(-1)


def _as_bhls(weights: torch.Tensor) -> torch.Tensor:
    """(batch, heads, queries, keys): no head dim -> one head; extra dims (groups) -> more heads."""
    if weights.dim() == 2:
        return weights[None, None]
    if weights.dim() == 3:
        return weights.unsqueeze(1)
    return weights.flatten(1, -3)


@contextlib.contextmanager
def _sdpa_spy(captured: list):
    """Record the weights of every F.scaled_dot_product_attention call made while active."""
    original = F.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        weights = sdpa_weights(query, key, attn_mask, is_causal, scale, enable_gqa)
        captured.append(_as_bhls(weights))
        kwargs = {"scale": scale} | ({"enable_gqa": True} if enable_gqa else {})
        return original(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kwargs)

    F.scaled_dot_product_attention = spy
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def capture_attention(probe, batch: dict) -> tuple[str | None, list[torch.Tensor]]:
    """(where the weights came from, a (batch, heads, queries, keys) tensor per attention layer)."""
    model, captured = probe.model, []
    with _mha_hooks(model, captured) as has_mha:
        if has_mha:
            probe.logits(batch)
            return "nn.MultiheadAttention", captured
    target = getattr(model, "_orig_mod", model)
    try:
        takes_flag = "output_attentions" in inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        takes_flag = False
    if takes_flag:
        inputs = to_device(batch, probe.device)
        kwargs = {probe.spec.input_key: inputs[probe.spec.input_key]}
        if "attention_mask" in inputs:
            kwargs["attention_mask"] = inputs["attention_mask"]
        out = model(**kwargs, output_attentions=True)
        found = getattr(out, "attentions", None)
        if found:
            return "output_attentions", [a.detach().float() for a in found if a is not None]
    with _sdpa_spy(captured):
        probe.logits(batch)
    return ("F.scaled_dot_product_attention", captured) if captured else (None, [])


def head_entropy(weights: torch.Tensor, causal: bool) -> torch.Tensor:
    """Mean over batch and queries of each head's entropy / ln(keys it may attend to); (heads,).

    Queries that may attend to one key only (the first one under a causal mask) are left out.
    """
    L, S = weights.shape[-2:]
    allowed = (torch.arange(L, device=weights.device) + 1 + (S - L)).clamp(max=S) if causal \
        else torch.full((L,), S, device=weights.device)
    p = weights.clamp_min(0)
    ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (B, H, L)
    keep = allowed > 1
    norm = ent[..., keep] / torch.log(allowed[keep].float())
    return norm.mean(dim=(0, 2))


def check_attention(probe, full: bool) -> CheckResult:
    """Per-head attention entropy on real inputs; heads below COLLAPSED_ENTROPY warn (collapse)."""
    length = min(probe.max_len, 64) if probe.spec.modality == "text" else None
    # gradients stay on: nn.TransformerEncoderLayer's inference fast path would bypass the hooks
    with probe.kept(train=False):
        source, layers = capture_attention(probe, probe.batch(8 if full else 4, length))
    if source is None or not layers:
        return CheckResult("attention", "skip", {}, "the model exposes no attention weights (no nn.MultiheadAttention, "
                           "no output_attentions=True, no F.scaled_dot_product_attention call)")
    causal = probe.spec.kind == "lm"
    per_layer = [head_entropy(w, causal).tolist() for w in layers]
    flat = [(i, h, e) for i, heads in enumerate(per_layer) for h, e in enumerate(heads)]
    collapsed = [f"layer {i} head {h}" for i, h, e in flat if e < COLLAPSED_ENTROPY]
    entropies = [e for _, _, e in flat]
    numbers = {"source": source, "layers": len(per_layer), "heads": len(flat), "min_entropy": min(entropies),
               "mean_entropy": sum(entropies) / len(entropies), "collapsed": len(collapsed)}
    details = {"entropy": per_layer, "collapsed": collapsed}
    if collapsed:
        return CheckResult("attention", "warn", numbers, f"{len(collapsed)} of {len(flat)} heads attend to about one "
                           f"key (normalised entropy < {COLLAPSED_ENTROPY:g}): {', '.join(collapsed[:3])}; HINT: check "
                           "the 1/sqrt(head_dim) scale and the q/k init; in training, qk-norm or a lower LR", details)
    return CheckResult("attention", "pass", numbers, f"{len(flat)} heads in {len(per_layer)} layers; normalised "
                       f"entropy {min(entropies):.2f}-{max(entropies):.2f} (1 = uniform), none collapsed", details)
