"""Text classification data: one or two segments per sample, tokenised by the backbone's own tokenizer.

Tokenisation is cached on disk per (tokenizer, max length, texts), so every job of a run (and of other runs on the
same data) tokenises once. Batches are padded to their own longest sample, not to ``max_seq_length``: training
shuffles, then sorts each window of ``bucket`` batches by length before cutting it into batches (the batch order is
shuffled again), so a CPU run does not pay for 128-token padding; evaluation runs in length order. A batch is
``({input_ids, attention_mask, token_type_ids}, labels)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from ..errors import fail
from ..io import load_torch, save_torch


@dataclass
class TextSplit:
    texts: list[tuple[str, ...]]
    labels: torch.Tensor  # long class ids, or float targets for regression

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> "TextSplit":
        return self if n is None else TextSplit(self.texts[:n], self.labels[:n])

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for t in self.texts:
            h.update("\x1f".join(t).encode())
            h.update(b"\x1e")
        return h.hexdigest()[:16]


def cache_root(cache_dir: str | None) -> Path:
    return Path(cache_dir or os.environ.get("EEBENCH_CACHE") or Path.home() / ".cache" / "eebench") / "tokens"


# the token cache's layout: every sample's ids in one flat tensor plus the lengths. A list of one small tensor per
# sample took ~9 s to save and ~7 s to load for SST-2's 67,349 phrases, in every text job; the flat one, well under 1 s
TOKEN_CACHE_FORMAT = 2


def tokenize(split: TextSplit, backbone, max_len: int, cache_dir: str | None) -> list[dict[str, torch.Tensor]]:
    """Token ids (and segment ids) of every sample, truncated to ``max_len``, unpadded; cached on disk."""
    key = hashlib.sha256(json.dumps([backbone.tokenizer_key(), max_len, split.fingerprint(),
                                     TOKEN_CACHE_FORMAT]).encode()).hexdigest()
    path = cache_root(cache_dir) / f"{key[:24]}.pt"
    if path.exists():
        try:
            return unpack(load_torch(path), len(split))
        except Exception as err:  # noqa: BLE001 — a corrupt or foreign cache entry is rebuilt, never trusted
            print(f"eebench: warning: token cache entry {path} refused ({str(err).split(' — ')[0]}); rebuilding it",
                  file=sys.stderr, flush=True)
            path.unlink(missing_ok=True)
    tok = backbone.tokenizer
    segments = list(zip(*split.texts))
    enc = tok(*[list(s) for s in segments], truncation=True, max_length=max_len, padding=False,
              return_token_type_ids=True, return_attention_mask=False) if segments else \
        {"input_ids": [], "token_type_ids": []}  # the tokenizer fails on no text at all
    ids = [torch.tensor(i, dtype=torch.int32) for i in enc["input_ids"]]
    types = [torch.tensor(t, dtype=torch.int8) for t in enc["token_type_ids"]]
    packed = {"format": TOKEN_CACHE_FORMAT, "lengths": torch.tensor([len(i) for i in ids], dtype=torch.int64),
              "input_ids": torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int32),
              "token_type_ids": torch.cat(types) if types else torch.zeros(0, dtype=torch.int8)}
    save_torch(path, packed)
    return unpack(packed, len(split))


def unpack(packed: dict, samples: int) -> list[dict[str, torch.Tensor]]:
    """The per-sample views of a packed cache entry; an entry of another layout or size is refused."""
    if not isinstance(packed, dict) or packed.get("format") != TOKEN_CACHE_FORMAT:
        raise ValueError("another cache layout")
    lengths, ids, types = packed["lengths"], packed["input_ids"], packed["token_type_ids"]
    if len(lengths) != samples or int(lengths.sum()) != len(ids) or len(types) != len(ids) or (lengths < 0).any():
        raise ValueError("its lengths do not match its tokens")
    sizes = lengths.tolist()
    return [{"input_ids": i, "token_type_ids": t} for i, t in zip(ids.split(sizes), types.split(sizes))]


def collate(samples: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the batch's longest sample."""
    n = max(len(s["input_ids"]) for s in samples)
    ids = torch.full((len(samples), n), pad_id, dtype=torch.long)
    types = torch.zeros((len(samples), n), dtype=torch.long)
    mask = torch.zeros((len(samples), n), dtype=torch.long)
    for i, s in enumerate(samples):
        k = len(s["input_ids"])
        ids[i, :k], types[i, :k], mask[i, :k] = s["input_ids"], s["token_type_ids"], 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def length_buckets(lengths: torch.Tensor, batch_size: int, bucket: int,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of similar lengths: shuffle, sort windows of ``bucket`` batches by length, cut, shuffle."""
    order = torch.randperm(len(lengths), generator=generator)
    window = batch_size * max(bucket, 1)
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches += list(chunk.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


class TextSource:
    """A ``DataSource`` over text (see ``eebench.data``); ``metric`` names the task's metric (``eebench.metrics``)."""

    def __init__(self, train: TextSplit, test: TextSplit, num_classes: int, description: str, metric: str,
                 max_seq_length: int = 128, bucket: int = 50, cache_dir: str | None = None):
        if not len(train) or not len(test):
            raise fail(f"dataset '{description}' has an empty split", "check the data folder and the split names")
        self.train, self.test = train, test
        self.num_classes, self.description, self.metric = num_classes, description, metric
        self.max_seq_length, self.bucket, self.cache_dir = max_seq_length, bucket, cache_dir
        self._memo: dict[int, tuple] = {}

    @property
    def train_size(self) -> int:
        return len(self.train)

    def _check(self, backbone) -> None:
        if not hasattr(backbone, "tokenizer_key"):
            raise fail(f"dataset '{self.description}' is text, but the {backbone.family} backbone takes images",
                       "pick a text backbone (bert_base_uncased, minilm_l6, bert_tiny_test)")

    def _encoded(self, backbone, split: TextSplit):
        """The split tokenised for ``backbone``: read from the token cache once, then kept for this backbone (a batch
        of given samples looks them up; re-reading the cache file per batch would cost more than the batch)."""
        self._check(backbone)
        held = self._memo.get(id(split))
        if held is None or held[0] is not backbone:
            held = (backbone, tokenize(split, backbone, self.max_seq_length, self.cache_dir))
            self._memo[id(split)] = held
        return held[1]

    def train_batches(self, backbone, batch_size: int, generator: torch.Generator) -> Iterable:
        for idx in self.train_order(backbone, batch_size, generator):
            yield self.train_batch(backbone, idx)

    # The three methods below let a stage that trains heads on a frozen backbone read the backbone's block outputs
    # from a cache (eebench.training.features) instead of running it: text has no augmentation, so a training
    # sample's inputs are the same in every epoch.
    def train_order(self, backbone, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """One epoch's training batches as sample indices, drawn from ``generator`` exactly as train_batches draws
        them."""
        samples = self._encoded(backbone, self.train)
        lengths = torch.tensor([len(s["input_ids"]) for s in samples])
        return length_buckets(lengths, batch_size, self.bucket, generator)

    def train_batch(self, backbone, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The training samples ``idx`` as one batch, padded to its longest, and their labels."""
        samples = self._encoded(backbone, self.train)
        return collate([samples[i] for i in idx.tolist()], backbone.tokenizer.pad_token_id or 0), self.train.labels[idx]

    def train_labels(self, idx: torch.Tensor) -> torch.Tensor:
        return self.train.labels[idx]

    def train_key(self, backbone) -> str:
        """What the training inputs are (tokenizer, length limit, texts): the data part of a feature-cache key."""
        return json.dumps(["text", backbone.tokenizer_key(), self.max_seq_length, self.train.fingerprint()])

    def resample_batches(self, backbone, batch_size: int, generator: torch.Generator, size: int) -> Iterable:
        """``size`` training samples drawn with replacement, in batches (COST-EFF's Taylor-importance pass)."""
        samples = self._encoded(backbone, self.train)
        pad = backbone.tokenizer.pad_token_id or 0
        for idx in torch.randint(len(samples), (max(int(size), 1),), generator=generator).split(batch_size):
            yield collate([samples[i] for i in idx.tolist()], pad), self.train.labels[idx]

    def eval_samples(self, backbone) -> list[dict[str, torch.Tensor]]:
        """Every evaluation sample in the split's own order, tokenised and unpadded."""
        return self._encoded(backbone, self.test)

    def eval_order(self, backbone) -> torch.Tensor:
        samples = self._encoded(backbone, self.test)
        return torch.sort(torch.tensor([len(s["input_ids"]) for s in samples]), stable=True).indices

    def eval_batches(self, backbone, batch_size: int) -> Iterable:
        samples = self._encoded(backbone, self.test)
        pad = backbone.tokenizer.pad_token_id or 0
        for idx in self.eval_order(backbone).split(batch_size):
            yield collate([samples[i] for i in idx.tolist()], pad), self.test.labels[idx]
