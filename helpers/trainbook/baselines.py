"""Classical baselines, fitted on the train split and scored on the val split like the Trainer's model.

    b = baseline(data)   # {"metric": "val_bits_per_byte", "value": 3.41, "mode": "min", "model": "...", ...}

- lm: a token bigram model (byte bigram for byte-level text). P(b | a) = (c(a, b) + beta * u(b)) /
  (c(a) + beta): bigram counts interpolated towards the add-one unigram u(b) = (c(b) + 1) / (N + V)
  with the pseudo-count beta that maximises the leave-one-out likelihood of the training bigrams
  (a grid of 41 values, 1e-2 .. 1e4). It is scored on the targets Trainer.evaluate scores: every
  token after the first of each example, after truncation to spec.max_seq_len (padding is not a
  target). Bits per byte = summed negative log-likelihood / ln 2 / bytes, where bytes is the sum
  of the val examples' `n_bytes` (the number of bytes of text that the example's target tokens,
  all but the first, decode to) when every val example has that key, else the number of targets
  (byte-level text: one token is one byte, as the Trainer's val_bits_per_byte assumes).
- text-cls: multinomial logistic regression (scikit-learn, lbfgs, C=1) on bag-of-tokens features:
  each example's token counts divided by its length, standardised.
- vision-cls (any image task): logistic regression (lbfgs, C=1) on the standardised raw pixels.
"""

from __future__ import annotations

import math
import time

import numpy as np

BETA_GRID = np.logspace(-2, 4, 41)   # lm: candidate pseudo-counts of the bigram's unigram prior
N_BYTES_KEY = "n_bytes"              # lm: bytes of text behind an example's target tokens (optional)


def baseline(data) -> dict:
    """Fit the task's classical baseline on `data.train` and score it on `data.val`.

    Args:
        data: a TaskData (tb.load_task_data): train and val splits and their spec.
    Returns:
        {"task", "metric" (val_bits_per_byte | val_accuracy, as the Trainer names it), "value",
        "mode" ("min": lower is better | "max"), "model" (what was fitted), "fit_s" (seconds to
        build features and fit), "n_train", "n_val"} plus, for lm, "beta" and "bytes".
    Raises:
        ValueError: an empty split, a token id outside the vocabulary, or a task kind without a baseline.
    """
    spec = data.spec
    for name in ("train", "val"):
        if len(getattr(data, name)) == 0:
            raise ValueError(f"baseline needs a non-empty {name} split; data.{name} is empty")
    train, val = list(data.train), list(data.val)
    if spec.kind == "lm":
        out = bigram_bits_per_byte(train, val, spec)
    elif spec.kind == "classification":
        out = logistic_accuracy(train, val, spec)
    else:
        raise ValueError(f"no baseline for task kind {spec.kind!r}; kinds: 'lm', 'classification'")
    return {"task": spec.name, **out, "n_train": len(train), "n_val": len(val)}


# --- lm: token bigram ---

def _sequences(examples, spec, split: str) -> list[np.ndarray]:
    seqs = []
    for i, e in enumerate(examples):
        ids = np.asarray(e[spec.input_key]).astype(np.int64).ravel()[: spec.max_seq_len]
        bad = (ids < 0) | (ids >= spec.vocab_size)
        if bad.any():
            raise ValueError(f"{split} example {i}: token id {int(ids[bad][0])} is outside the vocabulary "
                             f"(vocab_size {spec.vocab_size}). HINT: encode with the tokenizer the spec was made for")
        seqs.append(ids)
    return seqs


def _pairs(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(previous token, target) for every target: each token after the first of each sequence."""
    prev = np.concatenate([s[:-1] for s in seqs] + [np.zeros(0, np.int64)])
    nxt = np.concatenate([s[1:] for s in seqs] + [np.zeros(0, np.int64)])
    return prev, nxt


def fit_bigram(train_seqs: list[np.ndarray], vocab: int, beta: float | None = None) -> dict:
    """Counts of a bigram model (sparse: only seen pairs) and its pseudo-count beta.

    Args:
        train_seqs: token id arrays. vocab: vocabulary size. beta: None chooses it by
            leave-one-out likelihood over BETA_GRID.
    Returns:
        {"pair_codes" (sorted prev * vocab + next), "pair_counts", "context" (c(a) per token),
        "unigram" (add-one u(b) per token), "beta", "vocab"}.
    Raises:
        ValueError: the training sequences hold no bigram (every sequence is shorter than 2).
    """
    prev, nxt = _pairs(train_seqs)
    if len(prev) == 0:
        raise ValueError("the train split has no bigram (every example is shorter than 2 tokens)")
    codes, counts = np.unique(prev * vocab + nxt, return_counts=True)
    context = np.bincount(prev, minlength=vocab).astype(float)
    unigram = (np.bincount(nxt, minlength=vocab) + 1.0) / (len(nxt) + vocab)
    model = {"pair_codes": codes, "pair_counts": counts.astype(float), "context": context, "unigram": unigram,
             "vocab": vocab, "beta": beta}
    if beta is None:
        model["beta"] = float(BETA_GRID[int(np.argmax([_leave_one_out(model, b) for b in BETA_GRID]))])
    return model


def _leave_one_out(model: dict, beta: float) -> float:
    """Log-likelihood of every training bigram under the model fitted without that one occurrence."""
    c, codes, vocab = model["pair_counts"], model["pair_codes"], model["vocab"]
    a, b = codes // vocab, codes % vocab
    p = (c - 1 + beta * model["unigram"][b]) / (model["context"][a] - 1 + beta)
    return float(np.sum(c * np.log(p)))


def bigram_nll(model: dict, seqs: list[np.ndarray]) -> tuple[float, int]:
    """(summed negative log-likelihood in nats, number of targets) of the sequences' targets."""
    prev, nxt = _pairs(seqs)
    vocab, codes = model["vocab"], model["pair_codes"]
    query = prev * vocab + nxt
    j = np.minimum(np.searchsorted(codes, query), len(codes) - 1)
    pair = np.where(codes[j] == query, model["pair_counts"][j], 0.0)
    p = (pair + model["beta"] * model["unigram"][nxt]) / (model["context"][prev] + model["beta"])
    return float(-np.log(p).sum()), len(query)


def bigram_bits_per_byte(train, val, spec, beta: float | None = None) -> dict:
    """The lm baseline: a bigram fitted on `train`, bits per byte on `val` (see the module doc)."""
    t0 = time.perf_counter()
    model = fit_bigram(_sequences(train, spec, "train"), spec.vocab_size, beta)
    fit_s = time.perf_counter() - t0
    val_seqs = _sequences(val, spec, "val")
    nll, targets = bigram_nll(model, val_seqs)
    if targets == 0:
        raise ValueError("the val split has no target (every example is shorter than 2 tokens)")
    has_bytes = all(N_BYTES_KEY in e for e in val)
    n_bytes = sum(int(e[N_BYTES_KEY]) for e in val) if has_bytes else targets
    what = "token" if spec.vocab_size != 256 else "byte"
    return {"metric": "val_bits_per_byte", "value": nll / math.log(2) / n_bytes, "mode": "min",
            "model": f"{what} bigram, interpolated with the add-one unigram (beta={model['beta']:.3g})",
            "fit_s": fit_s, "beta": model["beta"], "bytes": n_bytes}


# --- classification: logistic regression ---

def input_features(examples, spec) -> np.ndarray:
    """text: token counts / length per example (a sparse matrix when vocab > 4096); vision: pixels."""
    if spec.modality == "vision":
        return np.stack([np.asarray(e[spec.input_key], dtype=np.float32).ravel() for e in examples])
    seqs = [np.asarray(e[spec.input_key]).astype(np.int64).ravel()[: spec.max_seq_len] for e in examples]
    seqs = [s[(s >= 0) & (s < spec.vocab_size)] for s in seqs]
    rows = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
    cols = np.concatenate(seqs + [np.zeros(0, np.int64)])
    weights = np.repeat([1.0 / max(1, len(s)) for s in seqs], [len(s) for s in seqs])
    if spec.vocab_size > 4096:
        from scipy.sparse import csr_matrix

        return csr_matrix((weights, (rows, cols)), shape=(len(seqs), spec.vocab_size))
    out = np.zeros((len(seqs), spec.vocab_size))
    np.add.at(out, (rows, cols), weights)
    return out


def logistic_accuracy(train, val, spec) -> dict:
    """Logistic regression on bag-of-tokens (text) or pixel (vision) features; accuracy on `val`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    x, y = input_features(train, spec), np.array([int(e[spec.label_key]) for e in train])
    if len(np.unique(y)) < 2:
        raise ValueError(f"the train split has only class {int(y[0])}; logistic regression needs two classes. "
                         "HINT: load more data (a larger limit)")
    model = make_pipeline(StandardScaler(with_mean=isinstance(x, np.ndarray)), LogisticRegression(C=1.0, max_iter=2000))
    with threadpool_limits(1):   # a small fit: BLAS threads cost more than they save (40x on a busy 2-core CPU)
        model.fit(x, y)
        fit_s = time.perf_counter() - t0
        predicted = model.predict(input_features(val, spec))
    accuracy = float(np.mean(predicted == np.array([int(e[spec.label_key]) for e in val])))
    inputs = "pixels" if spec.modality == "vision" else "token counts / length"
    return {"metric": "val_accuracy", "value": accuracy, "mode": "max",
            "model": f"logistic regression on {inputs} (scikit-learn, C=1, standardised)", "fit_s": fit_s}
