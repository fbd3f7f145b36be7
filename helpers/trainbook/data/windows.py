"""Cutting token ids into fixed-length windows (the unit of lm examples).

    examples = byte_windows(Path("notes.txt").read_bytes(), length=128)
    examples = token_windows(torch.tensor(tok.encode(text)), 128, token_bytes=tok.token_bytes)
"""

from __future__ import annotations

import torch


def byte_windows(data: bytes, length: int) -> list[dict]:
    """Consecutive windows of `length` bytes as {"input_ids": LongTensor}; a last window needs >= 2 bytes."""
    if len(data) < 2:
        return []
    return token_windows(torch.frombuffer(bytearray(data), dtype=torch.uint8).long(), length)


def token_windows(ids: torch.Tensor, length: int, token_bytes=None) -> list[dict]:
    """Consecutive windows of `length` ids; a last window needs >= 2 ids.

    With token_bytes (bytes of text per id, for subword tokenizers) each window also gets
    "n_bytes": the text bytes of its targets (ids 1..), for bits per byte.
    """
    out = [{"input_ids": ids[i:i + length]} for i in range(0, len(ids), length) if len(ids) - i >= 2]
    if token_bytes is not None:
        table = torch.as_tensor(token_bytes)
        for w in out:
            w["n_bytes"] = int(table[w["input_ids"][1:]].sum())
    return out
