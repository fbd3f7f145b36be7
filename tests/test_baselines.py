"""Classical baselines: the bigram against hand-computed values and the Trainer's own metric, and
logistic regression well above chance on the built-in classification tasks."""

import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

import trainbook as tb
from trainbook import baselines
from trainbook.data import ExampleDataset, TaskData


def text_data(train, val, vocab=256, max_seq_len=128, kind="lm", labels=None):
    spec = tb.TaskSpec.preset("lm").replace(vocab_size=vocab, max_seq_len=max_seq_len)
    if kind == "classification":
        spec = tb.TaskSpec.preset("text-cls").replace(vocab_size=vocab, max_seq_len=max_seq_len, num_classes=2,
                                                      class_names=("a", "b"))
    wrap = lambda seqs, ys: ExampleDataset([{"input_ids": torch.tensor(s, dtype=torch.long)}  # noqa: E731
                                            | ({"labels": y} if ys else {}) for s, y in zip(seqs, ys or [None] * len(seqs))])
    ys = labels or (None, None)
    return TaskData(wrap(train, ys[0]), wrap(val, ys[1]), wrap(val, ys[1]), spec)


def bigram_by_hand(train, val, vocab, beta):
    """The documented bigram, written with dictionaries: nats summed over the val targets."""
    pairs = Counter((a, b) for s in train for a, b in zip(s, s[1:]))
    context = Counter(a for s in train for a in s[:-1])
    targets = Counter(b for s in train for b in s[1:])
    n_targets = sum(targets.values())
    unigram = lambda b: (targets[b] + 1) / (n_targets + vocab)  # noqa: E731
    return sum(-math.log((pairs[(a, b)] + beta * unigram(b)) / (context[a] + beta)) for s in val
               for a, b in zip(s, s[1:]))


def test_bigram_bits_per_byte_equals_the_hand_computed_value():
    data = text_data([[0, 1, 0, 1], [1, 2]], [[0, 1, 2], [2, 0]], vocab=3)
    out = baselines.bigram_bits_per_byte(list(data.train), list(data.val), data.spec, beta=2.0)
    # u = (c(b) + 1) / (4 + 3) = (2/7, 3/7, 2/7); P(1|0) = (2 + 2*3/7) / (2 + 2) = 5/7;
    # P(2|1) = (1 + 2*2/7) / (2 + 2) = 11/28; P(0|2) = (0 + 2*2/7) / (0 + 2) = 2/7 (unseen context: u)
    nats = -math.log(5 / 7) - math.log(11 / 28) - math.log(2 / 7)
    assert out["value"] == pytest.approx(nats / math.log(2) / 3, rel=1e-12)
    assert (out["metric"], out["mode"], out["bytes"]) == ("val_bits_per_byte", "min", 3)


def test_bigram_divides_by_the_examples_byte_counts_when_they_carry_them():
    data = text_data([[0, 1, 0, 1], [1, 2]], [[0, 1, 2], [2, 0]], vocab=3)
    val = [{**e, "n_bytes": n} for e, n in zip(data.val, (7, 4))]   # e.g. BPE tokens of several bytes
    out = baselines.bigram_bits_per_byte(list(data.train), val, data.spec, beta=2.0)
    nats = -math.log(5 / 7) - math.log(11 / 28) - math.log(2 / 7)
    assert out["value"] == pytest.approx(nats / math.log(2) / 11, rel=1e-12) and out["bytes"] == 11


@pytest.mark.parametrize("vocab", [300, 50257])
def test_bigram_on_token_ids_matches_a_dictionary_implementation_for_any_vocabulary(vocab):
    rng = random.Random(vocab)
    used = rng.sample(range(vocab), 40)
    train = [[rng.choice(used) for _ in range(rng.randint(2, 30))] for _ in range(60)]
    val = [[rng.choice(used + [vocab - 1]) for _ in range(rng.randint(2, 30))] for _ in range(15)]
    data = text_data(train, val, vocab=vocab)
    out = baselines.bigram_bits_per_byte(list(data.train), list(data.val), data.spec, beta=5.0)
    n_targets = sum(len(s) - 1 for s in val)
    assert out["value"] == pytest.approx(bigram_by_hand(train, val, vocab, 5.0) / math.log(2) / n_targets, rel=1e-10)


def test_bigram_beta_maximises_the_leave_one_out_likelihood():
    data = tb.load_task_data("lm", seed=0, limit=80)
    seqs = [np.asarray(e["input_ids"]) for e in data.train]
    model = baselines.fit_bigram(seqs, 256)
    pairs = Counter((int(a), int(b)) for s in seqs for a, b in zip(s, s[1:]))
    context = Counter(int(a) for s in seqs for a in s[:-1])
    targets = Counter(int(b) for s in seqs for b in s[1:])
    n = sum(targets.values())

    def held_out(beta):  # each occurrence predicted by counts without it
        return sum(c * math.log((c - 1 + beta * (targets[b] + 1) / (n + 256)) / (context[a] - 1 + beta))
                   for (a, b), c in pairs.items())
    scores = [held_out(b) for b in baselines.BETA_GRID]
    assert model["beta"] == baselines.BETA_GRID[int(np.argmax(scores))]
    assert 0.05 < model["beta"] < 5000   # an interior optimum, not an end of the grid


class BigramTable(torch.nn.Module):
    """A model whose logits are log P(next | current) of a fixed table: the Trainer scores the bigram."""

    def __init__(self, log_probs):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(log_probs, dtype=torch.float32))

    def forward(self, input_ids):
        return self.table[input_ids]


def test_bigram_scores_the_same_targets_as_the_trainers_val_bits_per_byte(tmp_path):
    data = tb.load_task_data("lm", seed=1, limit=60)
    data.val.examples.append({"input_ids": torch.arange(40, 240)})   # longer than max_seq_len: truncated
    data.val.examples.append({"input_ids": torch.tensor([65, 66])})   # short: padding in its batch
    out = tb.baseline(data)
    model = baselines.fit_bigram([np.asarray(e["input_ids"])[:128] for e in data.train], 256)
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    codes = a * 256 + b
    j = np.minimum(np.searchsorted(model["pair_codes"], codes), len(model["pair_codes"]) - 1)
    pair = np.where(model["pair_codes"][j] == codes, model["pair_counts"][j], 0.0)
    log_p = np.log((pair + model["beta"] * model["unigram"][b]) / (model["context"][a] + model["beta"]))
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), batch_size=7, wandb_mode="disabled", progress_bar=False)
    metrics = tb.Trainer(BigramTable(log_p), training_config=cfg, task_spec=data.spec).evaluate(data.val)
    assert out["value"] == pytest.approx(metrics["val_bits_per_byte"], rel=1e-5)
    assert out["beta"] == model["beta"] and out["n_val"] == len(data.val)


def test_logistic_regression_beats_chance_by_far_on_builtin_text_cls():
    out = tb.baseline(tb.load_task_data("text-cls", seed=0, limit=600))
    assert out["metric"] == "val_accuracy" and out["mode"] == "max"
    assert 0.4 <= out["value"] <= 0.8       # chance is 1/6; bytes alone do not name the package
    assert "logistic regression" in out["model"] and out["fit_s"] > 0


def test_logistic_regression_on_pixels_reaches_90_percent_on_builtin_digits():
    out = tb.baseline(tb.load_task_data("vision-cls", seed=0, limit=800))
    assert out["value"] >= 0.9 and out["n_train"] == 800 and out["n_val"] == 200


def test_logistic_regression_on_large_vocabularies_uses_sparse_token_counts():
    rng = random.Random(0)
    train = [[rng.randrange(0, 100) + 1000 * y for _ in range(20)] for y in (0, 1) for _ in range(30)]
    val = [[rng.randrange(0, 100) + 1000 * y for _ in range(20)] for y in (0, 1) for _ in range(5)]
    data = text_data(train, val, vocab=50257, kind="classification", labels=([0] * 30 + [1] * 30, [0] * 5 + [1] * 5))
    assert baselines.input_features(list(data.train), data.spec).shape == (60, 50257)
    assert tb.baseline(data)["value"] == 1.0


def test_baseline_errors_name_the_problem():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tb.baseline(text_data([[0, 1, 5]], [[0, 1]], vocab=3))
    with pytest.raises(ValueError, match="data.val is empty"):
        tb.baseline(text_data([[0, 1]], [], vocab=3))
    with pytest.raises(ValueError, match="only class 0.*two classes"):
        tb.baseline(text_data([[0, 1], [1, 1]], [[0, 1]], vocab=3, kind="classification", labels=([0, 0], [1])))
