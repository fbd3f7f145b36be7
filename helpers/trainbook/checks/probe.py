"""What every check needs: the model seen exactly as the Trainer sees it, and batches to feed it.

    probe = Probe(model, spec, data=data, device=torch.device("cpu"), seed=0)
    batch = probe.batch(8); loss = probe.loss(batch); logits = probe.logits(batch)

Batches come from the collator the Trainer uses (`collator_for(spec)`), built from the user's
training examples when `data` is given and from random ones otherwise; the forward is
`models.make_forward` and the loss is the Trainer's (`loss_sum / count_targets`).
"""

from __future__ import annotations

import contextlib

import torch

from ..engine.loop import count_targets, loss_sum, to_device
from ..models.adapter import make_forward
from ..tasks import TaskSpec, collator_for


def unique_named_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """Trainable parameters with their first name; tied weights appear once."""
    seen, out = set(), []
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append((name, p))
    return out


class Probe:
    """A model, its task, a device and a seeded source of batches.

    Args:
        model: any nn.Module the Trainer accepts (already on `device`).
        spec: the task.
        data: a TaskData (its train split is used), a dataset of examples, or None (random examples).
        device: where the model runs. seed: seeds the random examples and the sampling of real ones.
    """

    def __init__(self, model: torch.nn.Module, spec: TaskSpec, data=None, device=None, seed: int = 0):
        self.model, self.spec = model, spec
        self.device = device or torch.device("cpu")
        self.forward = make_forward(model, spec)
        self.collate = collator_for(spec)
        self.examples = getattr(data, "train", data)
        if self.examples is not None and len(self.examples) == 0:
            raise ValueError("check_model: data has no training examples. HINT: pass data=None to use "
                             "random inputs, or load a non-empty dataset")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    # --- batches (on the CPU; logits()/loss() move them) ---

    @property
    def max_len(self) -> int:
        return self.spec.max_seq_len

    def random_examples(self, n: int, length: int | None = None) -> list[dict]:
        """Random token windows of `length` (default max_seq_len) or uniform [0, 1] images."""
        g, spec = self.generator, self.spec
        labels = torch.randint(0, max(spec.num_classes, 1), (n,), generator=g).tolist()
        if spec.modality == "vision":
            shape = (spec.channels, spec.image_size, spec.image_size)
            return [{"pixel_values": torch.rand(shape, generator=g), "labels": y} for y in labels]
        length = length or self.max_len
        ids = torch.randint(1, spec.vocab_size, (n, length), generator=g)
        return [{"input_ids": row, "labels": y} for row, y in zip(ids, labels)]

    def real_examples(self, n: int, length: int | None = None) -> list[dict] | None:
        """`n` training examples drawn with the probe's generator (text cut to `length`), or None."""
        if self.examples is None:
            return None
        idx = torch.randint(0, len(self.examples), (n,), generator=self.generator).tolist()
        out = [dict(self.examples[i]) for i in idx]
        if length is not None and self.spec.modality == "text":
            for e in out:
                e["input_ids"] = e["input_ids"][:length]
        return out

    def batch(self, n: int, length: int | None = None, real: bool = True) -> dict:
        """A collated batch of `n` examples: real ones when there is data and `real`, else random."""
        examples = self.real_examples(n, length) if real else None
        return self.collate(examples if examples is not None else self.random_examples(n, length))

    def batches(self, n: int):
        """Endless shuffled batches of `n` training examples (random ones without data)."""
        while True:
            if self.examples is None:
                yield self.batch(n, real=False)
                continue
            order = torch.randperm(len(self.examples), generator=self.generator).tolist()
            for start in range(0, max(1, len(order) - n + 1), n):
                yield self.collate([self.examples[i] for i in order[start:start + n]])

    # --- the Trainer's forward and loss ---

    def logits(self, batch: dict) -> torch.Tensor:
        return self.forward(to_device(batch, self.device))

    def loss(self, batch: dict, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss per target, as the Trainer computes it (LM: next token)."""
        batch = to_device(batch, self.device)
        logits = self.forward(batch) if logits is None else logits
        return loss_sum(logits, batch[self.spec.label_key], self.spec) / max(1, count_targets(batch, self.spec))

    def n_outputs(self, logits: torch.Tensor) -> int:
        return int(logits.shape[-1])

    # --- keeping the user's model as it was ---

    @contextlib.contextmanager
    def kept(self, train: bool):
        """Run a block in train/eval mode; afterwards weights, buffers, grads and mode are as before."""
        model = self.model
        was_training = model.training
        state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        grads = {id(p): p.grad for p in model.parameters()}
        model.train(train)
        try:
            yield model
        finally:
            with torch.no_grad():
                for k, v in model.state_dict(keep_vars=True).items():
                    v.copy_(state[k])
            for p in model.parameters():
                p.grad = grads.get(id(p))
            model.train(was_training)
