"""Built-in models: a causal GPT, a text encoder classifier and a small CNN.

    model = build_model(TaskSpec.preset("lm"), size="tiny")

Built-in models take `input_ids` (text) or `pixel_values` (vision) as the first positional
argument, an optional `attention_mask`, and return logits. Attention uses
F.scaled_dot_product_attention, so CUDA runs Flash / memory-efficient kernels.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..tasks import TaskSpec

SIZES = {  # n_layer, n_head, n_embd
    "tiny": (2, 4, 64),
    "small": (4, 4, 128),
    "base": (6, 6, 384),
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str          # gpt | text-classifier | vision-cnn
    vocab_size: int = 256
    max_seq_len: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.1
    num_classes: int = 0
    channels: int = 1
    image_size: int = 8
    width: int = 32    # vision: channels of the first conv

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, causal: bool):
        super().__init__()
        self.n_head, self.causal, self.dropout = cfg.n_head, causal, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x, key_padding_mask=None):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        mask = None
        if key_padding_mask is not None and not self.causal:  # (B, T) 1 = keep
            mask = key_padding_mask[:, None, None, :].bool()
        # causal LM with right padding needs no mask: padded positions only see real tokens before them
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, causal: bool):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.attn = SelfAttention(cfg, causal)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))

    def forward(self, x, key_padding_mask=None):
        x = x + self.attn(self.ln1(x), key_padding_mask)
        return x + self.mlp(self.ln2(x))


class NGramStem(nn.Module):
    """Two residual 1-D convolutions over token embeddings (kernel 5: a position sees 9 tokens).

    Padded positions (attention_mask 0) are zeroed before and after each convolution, so they
    read as the convolution's own zero padding and an example's features do not depend on how
    much padding its batch has.
    """

    KERNEL = 5

    def __init__(self, n_embd: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_embd, n_embd, self.KERNEL, padding=self.KERNEL // 2)
        self.conv2 = nn.Conv1d(n_embd, n_embd, self.KERNEL, padding=self.KERNEL // 2)

    def forward(self, x, attention_mask):  # x: (B, T, C)
        keep = attention_mask.unsqueeze(1).to(x.dtype)   # (B, 1, T)
        h = x.transpose(1, 2) * keep
        h = F.gelu(self.conv1(h)) * keep
        h = h + F.gelu(self.conv2(h)) * keep
        return h.transpose(1, 2)


class Transformer(nn.Module):
    """Token embeddings, an optional stem over them, position embeddings, pre-norm blocks, a final LayerNorm."""

    def __init__(self, cfg: ModelConfig, causal: bool, stem: nn.Module | None = None, final_norm: bool = True):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.stem = stem
        self.pos = nn.Embedding(cfg.max_seq_len, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, causal) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd) if final_norm else nn.Identity()

    def forward(self, input_ids, attention_mask=None):
        T = input_ids.shape[1]
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.cfg.max_seq_len}")
        x = self.tok(input_ids)
        if self.stem is not None:
            x = self.stem(x, attention_mask)
        x = self.drop(x + self.pos(torch.arange(T, device=input_ids.device)))
        for block in self.blocks:
            x = block(x, attention_mask)
        return self.ln_f(x)


def _init_weights(module: nn.Module, n_layer: int):
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
            nn.init.normal_(p, mean=0.0, std=std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


class GPT(nn.Module):
    """Causal byte-level GPT with weight tying between the embedding and the output head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.transformer = Transformer(cfg, causal=True)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        _init_weights(self, cfg.n_layer)
        self.head.weight = self.transformer.tok.weight

    def forward(self, input_ids, attention_mask=None):
        return self.head(self.transformer(input_ids))


class TextClassifier(nn.Module):
    """Token n-gram convolutions, bidirectional transformer blocks, masked max pooling, linear head.

    The n-gram stem (NGramStem) turns tokens into local features before the attention blocks.
    From scratch, on a few thousand short examples, attention alone over byte embeddings barely
    learns in the notebook's budget (the plain encoder with mean pooling tied the
    logistic-regression baseline), while n-gram detectors with max pooling (a keyword present or
    not) learn within an epoch. Parameters keep PyTorch's default init (unit-variance embeddings:
    GPT-2's 0.02 kept this model at chance for 4 epochs), except the head, which starts at 0.02
    so the initial loss is ln(num_classes). The residual stream is max-pooled without a final
    LayerNorm (normalising each position first cost 5-9 points of accuracy here); padded
    positions never win the max, and an example with no tokens pools to zeros.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.transformer = Transformer(cfg, causal=False, stem=NGramStem(cfg.n_embd), final_norm=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.n_embd, cfg.num_classes)
        nn.init.normal_(self.head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.transformer(input_ids, attention_mask)
        padded = attention_mask.unsqueeze(-1) == 0
        pooled = h.masked_fill(padded, float("-inf")).amax(dim=1)
        pooled = pooled.masked_fill(padded.all(dim=1), 0.0)  # an example with no tokens
        return self.head(self.drop(pooled))


class VisionCNN(nn.Module):
    """Three conv blocks, global average pooling, linear head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        w = cfg.width
        layers, c_in = [], cfg.channels
        for c_out in (w, 2 * w, 2 * w):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        layers.insert(6, nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(c_in, cfg.num_classes))

    def forward(self, pixel_values, attention_mask=None):
        return self.head(self.features(pixel_values).mean(dim=(2, 3)))


ARCHS = {"gpt": GPT, "text-classifier": TextClassifier, "vision-cnn": VisionCNN}


def model_config_for(spec: TaskSpec, size: str = "tiny", dropout: float = 0.1) -> ModelConfig:
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(map(repr, SIZES))}; got {size!r}")
    n_layer, n_head, n_embd = SIZES[size]
    if spec.modality == "vision":
        width = {"tiny": 16, "small": 32, "base": 64}[size]
        return ModelConfig("vision-cnn", num_classes=spec.num_classes, channels=spec.channels,
                           image_size=spec.image_size, width=width, dropout=dropout)
    arch = "gpt" if spec.kind == "lm" else "text-classifier"
    return ModelConfig(arch, vocab_size=spec.vocab_size, max_seq_len=spec.max_seq_len, n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd, dropout=dropout, num_classes=spec.num_classes)


def build_model(spec: TaskSpec, size: str = "tiny", dropout: float = 0.1, seed: int | None = 0,
                verbose: bool = False) -> nn.Module:
    """A built-in model for the task: GPT (lm), TextClassifier (text-cls) or VisionCNN (vision-cls).

    Args:
        spec: the task spec. size: "tiny" | "small" | "base". seed: initialisation seed
            (None keeps the global RNG).
    """
    return build_from_config(model_config_for(spec, size, dropout), seed=seed, verbose=verbose)


def build_from_config(cfg: ModelConfig, seed: int | None = 0, verbose: bool = False) -> nn.Module:
    if seed is not None:
        torch.manual_seed(seed)
    model = ARCHS[cfg.arch](cfg)
    if verbose:
        print(f"model {cfg.arch}: {count_parameters(model):,} parameters")
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
