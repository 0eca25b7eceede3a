"""The queries Table 5 times: evaluation samples in a fixed order — the split's own order, the first ``limit`` of it,
so a length-sorted slice never stands in for the dev set — each at its real size (text: its own token count, no
padding at batch 1). Each query knows where its logits sit in the exit-logit cache (the evaluation order: the
split's order for images, length-sorted for text), so the offline replay reads the same samples.

Batched throughput groups consecutive queries; a text batch is padded to its longest query (right padding with the
tokenizer's padding id, attention mask 0 there), as the evaluation batches are.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from ..device import to_device

TEXT_FIELDS = (("input_ids", None), ("attention_mask", 0), ("token_type_ids", 0))  # (key, fill; None: padding id)


@dataclass
class Queries:
    inputs: list[Any]  # one batch-1 input per query: an image tensor [1, ...] or a text dict of [1, tokens]
    labels: torch.Tensor | None  # [N] classes, or values for regression; None when unknown
    cache_index: torch.Tensor  # [N] position of each query in the exit-logit cache
    metric: str = "accuracy"  # the task's metric (``eebench.metrics``)
    pad_id: int | None = None  # text: the tokenizer's padding id; None for images

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def is_text(self) -> bool:
        return self.pad_id is not None

    def to(self, device: torch.device, dtype: torch.dtype) -> "Queries":
        """On ``device``; images cast to ``dtype`` (token ids stay integers)."""
        moved = [to_device(x, device) if self.is_text else x.to(device=device, dtype=dtype) for x in self.inputs]
        return replace(self, inputs=moved)

    def batch(self, start: int, stop: int) -> Any:
        """Queries ``start``..``stop``-1 as one batch."""
        items = self.inputs[start:stop]
        if not self.is_text:
            return torch.cat(items)
        longest = max(x["input_ids"].shape[1] for x in items)
        return {key: torch.cat([F.pad(x[key], (0, longest - x[key].shape[1]), value=self.pad_id if fill is None
                                      else fill) for x in items])
                for key, fill in TEXT_FIELDS if key in items[0]}

    def lengths(self) -> list[int] | None:
        """Text: each query's token count; images: None."""
        return [int(x["input_ids"].shape[1]) for x in self.inputs] if self.is_text else None


def tensor_queries(inputs: torch.Tensor, labels: torch.Tensor | None = None) -> Queries:
    """Image queries from a tensor [N, ...] (cache positions 0..N-1)."""
    return Queries([inputs[i:i + 1] for i in range(len(inputs))], labels, torch.arange(len(inputs)))


def eval_queries(data, backbone, limit: int | None) -> Queries:
    """The first ``limit`` (None: all) evaluation samples of ``data`` in the split's order."""
    if hasattr(data, "eval_samples"):  # text
        samples = data.eval_samples(backbone)
        n = len(samples) if limit is None else min(limit, len(samples))
        order = data.eval_order(backbone)  # cache position p holds sample order[p]
        position = torch.empty_like(order)
        position[order] = torch.arange(len(order))
        inputs = [{"input_ids": s["input_ids"][None].long(), "attention_mask": torch.ones(1, len(s["input_ids"]),
                                                                                          dtype=torch.long),
                   "token_type_ids": s["token_type_ids"][None].long()} for s in samples[:n]]
        return Queries(inputs, data.test.labels[:n], position[:n], data.metric,
                       pad_id=backbone.tokenizer.pad_token_id or 0)
    xs, ys, n = [], [], 0
    for xb, yb in data.eval_batches(backbone, 256):
        xs.append(xb)
        ys.append(yb)
        n += len(xb)
        if limit is not None and n >= limit:
            break
    return tensor_queries(torch.cat(xs)[:limit], torch.cat(ys)[:limit])
