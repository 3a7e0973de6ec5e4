"""Collating items that are whole clips of varying length (FSD50K evaluation: every 1-s chunk of a clip).

The original evaluates FSD50K one clip per batch (batch size 1: `model(chunks).mean(0)` per clip).
nb360 batches whole clips: `collate_clips` concatenates the chunks of the batch's clips into one
(Σ n_i, 1, 96, 101) tensor and keeps the clip boundaries in a `ClipChunks` (the counts n_i), so a
batch of any size holds clips of any chunk counts; `clip_means` turns the chunk logits back into
one averaged logit row per clip, the original's clip-level logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class ClipChunks:
    """How many consecutive chunk rows of a batch belong to each clip (moves with the batch like a tensor)."""

    def __init__(self, counts: torch.Tensor) -> None:
        self.counts = counts

    def to(self, device: Any, non_blocking: bool = False) -> ClipChunks:
        """The same counts (they stay on the CPU: `split` needs Python ints)."""
        return self

    def __len__(self) -> int:
        return int(self.counts.numel())

    def __repr__(self) -> str:
        return f"ClipChunks({self.counts.tolist()})"


def collate_clips(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, ClipChunks]:
    """Items (chunks (n_i, ...), y) -> (all chunks (Σ n_i, ...), y (B, ...), ClipChunks([n_i]))."""
    chunks = [item[0] for item in items]
    counts = torch.tensor([c.shape[0] for c in chunks], dtype=torch.long)
    return torch.cat(chunks), torch.stack([torch.as_tensor(item[1]) for item in items]), ClipChunks(counts)


def clip_means(logits: torch.Tensor, chunks: ClipChunks) -> torch.Tensor:
    """(Σ n_i, C) chunk logits -> (B, C): each clip's mean over its chunks (the original's `.mean(0)` per clip)."""
    return torch.stack([part.mean(0) for part in logits.split(chunks.counts.tolist())])


def collate_for(dataset: Any) -> Any:
    """The collate function a dataset asks for (its `collate` attribute, under Subset wrappers), else None."""
    while dataset is not None and not hasattr(dataset, "collate") and hasattr(dataset, "dataset"):
        dataset = dataset.dataset
    return getattr(dataset, "collate", None)
