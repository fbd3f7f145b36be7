"""Cutting a byte string into fixed-length token windows (the unit of text examples).

    examples = byte_windows(Path("notes.txt").read_bytes(), length=128)
"""

from __future__ import annotations

import torch


def byte_windows(data: bytes, length: int) -> list[dict]:
    """Consecutive windows of `length` bytes as {"input_ids": LongTensor}; a last window needs >= 2 bytes."""
    if len(data) < 2:
        return []
    ids = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return [{"input_ids": ids[i:i + length]} for i in range(0, len(ids), length) if len(ids) - i >= 2]
