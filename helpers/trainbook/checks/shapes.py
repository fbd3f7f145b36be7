"""Checks of what the model computes, not how well: output shapes and the causal mask.

    result = check_shapes(probe, full=False); result = check_causal_mask(probe, full=False)
"""

from __future__ import annotations

import copy

import torch

from ..models.adapter import make_forward
from .report import CheckResult

CAUSAL_TOLERANCE = 1e-5  # max abs logit change (fp32) allowed at or before the edited position


def expected_shape(spec, batch: int, length: int | None, n_outputs: int) -> tuple:
    return (batch, length, n_outputs) if spec.kind == "lm" else (batch, n_outputs)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:120]}" if text else type(e).__name__


def check_shapes(probe, full: bool) -> CheckResult:
    """Forward over batch sizes {1, 2, 7} and, for text, lengths {1, 2, max_seq_len}.

    The logits must be (batch, length, vocab) for language models and (batch, classes) for
    classifiers; `max_seq_len + 1` tokens must raise an error that names the limit.
    """
    spec = probe.spec
    n_out = spec.vocab_size if spec.kind == "lm" else spec.num_classes
    text = spec.modality == "text"
    cases = [(b, probe.max_len if text else None) for b in (1, 2, 7)]
    if text:
        cases += [(2, t) for t in (1, 2)]
    problems, wide, seen = [], None, []
    with probe.kept(train=False), torch.no_grad():
        for b, t in cases:
            try:
                out = probe.logits(probe.batch(b, t, real=False))
            except Exception as e:  # reported as a finding, not re-raised: the other checks still run
                problems.append(f"batch {b}" + (f" x {t} tokens" if text else "") + f" raised {_first_line(e)}")
                continue
            shape = tuple(out.shape)
            seen.append(shape)
            want = expected_shape(spec, b, t, n_out)
            if shape[:-1] == want[:-1] and shape[-1] > n_out:
                wide = shape[-1]  # e.g. nanoGPT pads its vocabulary to a multiple of 64
            elif shape != want:
                last_only = spec.kind == "lm" and len(shape) == 3 and shape[1] == 1 and t > 1
                problems.append(f"batch {b}" + (f" x {t} tokens" if text else "") + f": logits {shape}, expected {want}"
                                + (" (logits of the last position only, as nanoGPT returns without targets: the "
                                   "Trainer needs every position)" if last_only else ""))
    numbers = {"batch_sizes": [1, 2, 7]}
    if text:
        numbers["lengths"] = [1, 2, probe.max_len]
    if seen:
        numbers["largest_logits"] = "x".join(map(str, max(seen, key=lambda s: s[0] * (s[1] if len(s) > 2 else 1))))
    over = _over_length(probe) if text else None
    if over is not None:
        numbers["over_length"] = over[0]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return CheckResult("shapes", "fail", numbers, problems[0] + more, details={"problems": problems})
    if over is not None and over[1]:
        return CheckResult("shapes", "warn", numbers, over[1])
    if wide:
        return CheckResult("shapes", "warn", numbers, f"logits have {wide} outputs for {n_out} targets: the extra "
                           f"{wide - n_out} cost compute; fine if the vocabulary is padded on purpose")
    return CheckResult("shapes", "pass", numbers, "every batch size and length gives the expected logits"
                       + ("; max_seq_len + 1 raises an error naming the limit" if text else ""))


def _over_length(probe) -> tuple[str, str | None]:
    """(what max_seq_len + 1 tokens did, a hint when that is a problem). Runs on a CPU copy:
    an out-of-range position index is a device-side assert on CUDA that breaks the session."""
    limit = probe.max_len
    model = probe.model
    if next(model.parameters(), torch.zeros(())).device.type != "cpu":
        try:
            model = copy.deepcopy(model).cpu()
        except Exception as e:  # a model that cannot be copied is still checked on the shapes it accepts
            return "not probed", ("max_seq_len + 1 was not probed: the model cannot be copied to the CPU "
                                  f"({_first_line(e)})")
    forward = probe.forward if model is probe.model else make_forward(model, probe.spec)
    ids = torch.randint(1, probe.spec.vocab_size, (1, limit + 1), generator=probe.generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}  # the collator would cut it
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = forward(batch)
    except Exception as e:
        message = _first_line(e)
        if str(limit) in message or str(limit + 1) in message:
            return type(e).__name__, None
        return type(e).__name__, (f"{limit + 1} tokens (max_seq_len {limit} + 1) raise {message!r}, which does not "
                                  f"name the limit; HINT: check the length in forward and raise ValueError naming it")
    finally:
        model.train(was_training)
    tables = [f"{n}.weight" for n, m in model.named_modules()  # a position embedding, or a (.., T, T) mask
              if isinstance(m, torch.nn.Embedding) and m.num_embeddings == limit]
    tables += [n for n, b in model.named_buffers() if b.dim() >= 2 and tuple(b.shape[-2:]) == (limit, limit)]
    if not tables:  # no position table sized to the context: longer inputs are fine
        return "accepted", None
    return "accepted", (f"{limit + 1} tokens (max_seq_len {limit} + 1) run without an error (logits "
                        f"{tuple(out.shape)}) although {tables[0]} is sized {limit}: positions may wrap or be "
                        "dropped silently; HINT: raise ValueError when the input is longer than the context")


def check_causal_mask(probe, full: bool) -> CheckResult:
    """Language models only: changing tokens after position t must not change logits at or before t.

    Each tested t gets random different tokens at t+1..T-1; the largest change of the logits at
    positions 0..t (fp32, eval mode) must be <= CAUSAL_TOLERANCE.
    """
    spec = probe.spec
    if spec.kind != "lm":
        return CheckResult("causal_mask", "skip", {}, f"only language models must be causal; {spec.name} is "
                                                      f"{spec.kind}, and a classifier may read the whole input")
    length = min(probe.max_len, 64)
    positions = sorted({0, 1, length // 4, length // 2, length - 2})
    worst, leaks = 0.0, {}
    with probe.kept(train=False), torch.no_grad():
        batch = probe.batch(2, length)
        base = probe.logits(batch).float()
        for t in positions:
            edited = dict(batch)
            ids = batch["input_ids"].clone()
            shift = torch.randint(1, spec.vocab_size, ids[:, t + 1:].shape, generator=probe.generator)
            ids[:, t + 1:] = (ids[:, t + 1:] + shift) % spec.vocab_size  # every later token differs
            edited["input_ids"] = ids
            diff = (probe.logits(edited).float()[:, : t + 1] - base[:, : t + 1]).abs()
            worst = max(worst, float(diff.max()))
            if float(diff.max()) > CAUSAL_TOLERANCE:
                leaks[t] = int((diff.amax(dim=(0, 2)) > CAUSAL_TOLERANCE).nonzero()[0])
    numbers = {"max_abs_diff": worst, "tolerance": CAUSAL_TOLERANCE, "positions": positions}
    if leaks:
        t = min(leaks)
        numbers["first_leak"] = f"t={t}"
        return CheckResult("causal_mask", "fail", numbers,
                           f"changing tokens after position {t} changes the logits at position {leaks[t]} "
                           f"(max {worst:.3g}): the model sees the future; HINT: use a causal mask "
                           "(scaled_dot_product_attention(..., is_causal=True) or a lower-triangular attn_mask)")
    return CheckResult("causal_mask", "pass", numbers, f"logits at or before t ignore later tokens "
                                                       f"(max change {worst:.2g} <= {CAUSAL_TOLERANCE:g})")
