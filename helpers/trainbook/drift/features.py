"""Per-example features of a dataset profile: text, vision, and a model's outputs on the examples.

    numeric, categorical = text_features(examples, spec, chunk_ids(len(examples)))   # used by profile_dataset

text -> length, unknown_rate (bytes outside printable ASCII), lines (byte-level vocab),
token_entropy (bits per sequence), tokens (frequencies per chunk); vision -> brightness,
contrast, sharpness (mean |neighbour difference|), channel_<c>_mean when there are several
channels; model -> confidence (max softmax), loss and predicted (class, or next token for lm).
Each returns numeric columns {name: [value per example]} and categorical features
{name: (counts per chunk, category names)} (model: numeric columns, the predicted ids per example
and the number of classes / vocabulary size).
"""

from __future__ import annotations

import numpy as np

from .sketch import counts_by_chunk

_PRINTABLE = np.zeros(256, bool)
_PRINTABLE[32:127] = _PRINTABLE[[9, 10, 13]] = True


def text_features(examples, spec, chunk_of):
    vocab, key = spec.vocab_size, spec.input_key
    byte_level = vocab == 256
    cols = {"length": [], "unknown_rate": [], "token_entropy": []} | ({"lines": []} if byte_level else {})
    token_ids = []
    for e in examples:
        ids = np.asarray(e[key]).astype(np.int64).ravel()
        inside = (ids >= 0) & (ids < vocab)
        _, counts = np.unique(ids[inside], return_counts=True)   # any vocabulary size: only the ids present
        p = counts / max(1, counts.sum())
        cols["length"].append(len(ids))
        outside = (~inside).sum() + ((~_PRINTABLE[ids[inside]]).sum() if byte_level else 0)
        cols["unknown_rate"].append(float(outside) / max(1, len(ids)))
        cols["token_entropy"].append(float(-(p * np.log2(p)).sum()))
        if byte_level:
            cols["lines"].append(int((ids == 10).sum()))
        token_ids.append(ids[inside])
    return cols, {"tokens": (counts_by_chunk(chunk_of, token_ids, vocab), token_names(vocab, spec))}


def token_names(vocab: int, spec=None) -> list[str]:
    """Byte-level vocabularies: the character ('e', 'space', '\\n', '0xe2'); a subword tokenizer's
    tokens: "id 'text'" when its tokenizer is loaded (trainbook.data.tokenizer_for); otherwise the id."""
    if vocab != 256:
        sha = getattr(spec, "tokenizer_sha", "")
        if sha:
            from ..data import DataError, tokenizer_for

            try:
                texts = tokenizer_for(spec).token_names()
            except DataError:  # names only: without the tokenizer the ids stand for themselves
                texts = None
            if texts is not None and len(texts) == vocab:
                return [f"{i} {t!r}" for i, t in enumerate(texts)]
        return [str(i) for i in range(vocab)]
    special = {9: "\\t", 10: "\\n", 13: "\\r", 32: "space"}
    return [special.get(i, chr(i) if 33 <= i < 127 else f"0x{i:02x}") for i in range(256)]


def vision_features(examples, spec):
    import torch

    cols = {"brightness": [], "contrast": [], "sharpness": []}
    for start in range(0, len(examples), 256):
        x = torch.stack([examples[i][spec.input_key] for i in range(start, min(start + 256, len(examples)))]).float()
        cols["brightness"] += x.mean((1, 2, 3)).tolist()
        cols["contrast"] += x.flatten(1).std(1, unbiased=False).tolist()
        dx, dy = (x[..., :, 1:] - x[..., :, :-1]).abs(), (x[..., 1:, :] - x[..., :-1, :]).abs()
        cols["sharpness"] += ((dx.flatten(1).mean(1) + dy.flatten(1).mean(1)) / 2).tolist()
        if x.shape[1] > 1:
            for c, v in enumerate(x.mean((2, 3)).T.tolist()):
                cols.setdefault(f"channel_{c}_mean", []).extend(v)
    return cols, {}


def model_features(model, examples, spec, batch_size: int = 64):
    """Per-example confidence (max softmax) and loss, and predicted classes (lm: next tokens).

    Unlabelled classification examples (production data) get no loss feature.
    Returns:
        (numeric columns, predicted ids per example, number of outputs (classes or vocabulary)).
    """
    import torch
    import torch.nn.functional as F

    from ..models.adapter import make_forward
    from ..tasks import IGNORE_INDEX, collator_for

    collate, forward = collator_for(spec), make_forward(model, spec)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    labelled = spec.kind == "lm" or spec.label_key in examples[0]
    if not labelled:  # the collator needs a label; a placeholder, and no loss
        examples = [{**e, spec.label_key: 0} for e in examples]
    cols, predicted, n_outputs, was_training = {"confidence": [], "loss": []}, [], 0, model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(examples), batch_size):
                batch = collate([examples[i] for i in range(start, min(start + batch_size, len(examples)))])
                batch = {k: v.to(device) for k, v in batch.items()}
                logits, labels = forward(batch).float(), batch[spec.label_key]
                n_outputs = logits.shape[-1]
                if spec.kind == "lm":
                    logits, labels = logits[:, :-1], labels[:, 1:]
                    mask = (labels != IGNORE_INDEX).float()
                    per = lambda v: ((v * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().tolist()  # noqa: E731
                    ce = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
                    cols["loss"] += per(ce)
                    cols["confidence"] += per(logits.softmax(-1).amax(-1))
                    for row, valid in zip(logits.argmax(-1).cpu().numpy(), mask.bool().cpu().numpy()):
                        predicted.append(row[valid])
                else:
                    cols["loss"] += F.cross_entropy(logits, labels, reduction="none").cpu().tolist()
                    cols["confidence"] += logits.softmax(-1).amax(-1).cpu().tolist()
                    predicted += logits.argmax(-1).cpu().tolist()
    finally:
        model.train(was_training)
    if not labelled:
        del cols["loss"]
    return cols, predicted, n_outputs
