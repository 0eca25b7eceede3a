"""The frozen-backbone feature cache: a stage that trains only the heads on a frozen backbone (``feature_cache:
true``; ``eebench compare --protocol frozen``) reads the backbone's block outputs from disk instead of running it.

A frozen backbone in eval mode (no dropout) maps a training sample to the same block outputs in every epoch as long
as the sample itself does not change. Text has no augmentation, nor do the in-memory image sets (``digits``), so the
outputs are computed once, before the first epoch, and each step then runs only the heads: seconds per epoch
instead of a forward pass of the backbone per batch. Image files are read through random crops and flips
(``eebench.data.images``): a sample differs in every epoch, so those stages run the backbone on every batch as
before, and the stage says so.

What is kept, per training sample: the raw output of every block that carries an exit (the heads' input; for text
its real tokens only, the padding mask rebuilt from the lengths), and the backbone's final logits. Padding positions
are zeros here, where the backbone would have computed values there that every head ignores through the mask.

The cache is keyed by a digest of the frozen backbone's weights, the training inputs (tokenizer, length limit and
texts; or the pixels), the exit positions, the precision and the device type, and lives under
``$EEBENCH_CACHE/features/`` (default ``~/.cache/eebench``; a text dataset's ``cache_dir`` if set). A folder of
``.npy`` arrays plus ``meta.json``, read with numpy's memory map and ``allow_pickle=False``; written into a
temporary folder and renamed into place. Under bf16 autocast the block outputs are stored in bf16, the precision in
which a head's first linear layer reads them anyway (half the disk: ~3.4 GB for SST-2's 67,349 phrases on
MiniLM-L6's five exits).

Numerically the heads see what they would see without the cache up to the order of floating-point sums: the cache
is computed in length-sorted batches of ``eval_batch_size``, training batches pad differently.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import fail

FORMAT = 1
# the keys of a cached batch: a dict of tensors, so that moving it to a device and cutting it into data-parallel
# shards work as for a text batch
BLOCK = "frozen_block_"
MASK = "frozen_mask"
FINAL = "frozen_final_logits"


def is_cached(inputs) -> bool:
    return isinstance(inputs, dict) and FINAL in inputs


def forward_cached(model, inputs: dict[str, torch.Tensor]):
    states = {int(k[len(BLOCK):]): v for k, v in inputs.items() if k.startswith(BLOCK)}
    return model.forward_frozen(states, inputs.get(MASK), inputs[FINAL])


def check_stage(stage: dict[str, Any]) -> None:
    """The stage options the cache needs (checked when the plan is built, and again when the stage trains): only
    heads train, the backbone computes no gradient at all (``freeze: requires_grad``; DeeBERT's ``optimizer``
    freezing lets the backbone's gradients enter the clipping norm) and runs without dropout (``eval``), and the
    loss reads nothing but the heads' outputs and the final logits."""
    from . import LOSSES
    from .start import frozen_backbone_mode

    name = stage.get("name")
    if stage.get("train", "all") != "heads" or stage.get("freeze", "requires_grad") != "requires_grad":
        raise fail(f"stage {name!r}: feature_cache needs a frozen backbone (train: heads, freeze: requires_grad), not "
                   f"train: {stage.get('train', 'all')}, freeze: {stage.get('freeze', 'requires_grad')}",
                   "set feature_cache only on a stage that trains the heads alone")
    if frozen_backbone_mode(stage) != "eval":
        raise fail(f"stage {name!r}: feature_cache needs frozen_backbone_mode: eval (with dropout, the backbone's "
                   "outputs differ in every epoch and cannot be cached)", "add frozen_backbone_mode: eval")
    loss = LOSSES.get(stage["loss"])
    if loss.needs_teacher or getattr(loss, "needs_hidden", False) or getattr(loss, "needs_teacher_model", False):
        raise fail(f"stage {name!r}: loss {stage['loss']!r} reads the backbone's hidden states or a teacher, which "
                   "the feature cache does not keep", "train this stage without feature_cache")


def cache_root(data) -> Path:
    """Where feature caches live: a text dataset's ``cache_dir``, else ``$EEBENCH_CACHE``, else ~/.cache/eebench."""
    base = getattr(data, "cache_dir", None) or os.environ.get("EEBENCH_CACHE") or Path.home() / ".cache" / "eebench"
    return Path(base) / "features"


def weights_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, dtypes, shapes, bytes): what the frozen backbone is,
    wherever its weights came from."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cache_key(model, data, job: dict[str, Any], precision: str, device: torch.device) -> str:
    return hashlib.sha256(json.dumps({
        "format": FORMAT, "backbone": job["backbone"], "weights": weights_digest(model.backbone),
        "inputs": data.train_key(model.backbone), "layers": list(model.exit_layers), "precision": precision,
        "device": device.type}, sort_keys=True).encode()).hexdigest()


def frozen_features(model, data, job: dict[str, Any], device: torch.device, precision: str,
                    batch_size: int) -> "FeatureCache | None":
    """The stage's feature cache, read or computed now; None (with a line saying why) where the data cannot be
    cached or the job runs on several ranks."""
    from . import distributed as dist

    check_stage(job["stage"])
    if not hasattr(data, "train_order"):
        print("feature cache: off — this dataset's training images are augmented (random resized crop and "
              "horizontal flip, eebench.data.transforms), so a sample differs in every epoch; the frozen backbone "
              "runs on every batch", flush=True)
        return None
    if dist.active():
        print("feature cache: off — several ranks; the frozen backbone runs on every batch", flush=True)
        return None
    if not model.exit_layers:
        return None
    key = cache_key(model, data, job, precision, device)
    folder = cache_root(data) / key[:32]
    cache = FeatureCache.open(folder, key, data.train_size)
    if cache is not None:
        print(f"feature cache: read {folder} ({cache.describe()})", flush=True)
        return cache
    t0 = time.time()
    build(model, data, folder, key, device, precision, batch_size)
    cache = FeatureCache.open(folder, key, data.train_size)
    if cache is None:  # written and unreadable: a bug or a disk that lies
        raise fail(f"feature cache {folder} was written but cannot be read back", "delete it and rerun")
    print(f"feature cache: computed in {time.time() - t0:.1f} s → {folder} ({cache.describe()})", flush=True)
    return cache


STORE_DTYPE = {"fp32": np.float32, "bf16": np.uint16, "fp16": np.float16}  # bf16: its bits, as numpy has no bf16


def _as_stored(t: torch.Tensor, precision: str) -> np.ndarray:
    if precision == "bf16":
        return t.to(torch.bfloat16).view(torch.uint16).numpy()
    return t.to(torch.float16 if precision == "fp16" else torch.float32).numpy()


@torch.no_grad()
def build(model, data, folder: Path, key: str, device: torch.device, precision: str, batch_size: int) -> None:
    """Run the frozen backbone once over the training split (length-sorted batches for text) and write the block
    outputs at every exit, the lengths and the final logits into ``folder``, atomically."""
    from ..device import autocast, to_device
    from ..io import atomic_dir

    backbone = model.backbone
    n = data.train_size
    was_training = model.training
    model.eval()
    order = torch.arange(n)
    batches = list(order.split(batch_size))
    lengths, masked = np.zeros(n, dtype=np.int64), None
    for idx in batches:  # the lengths first (no model): they size the arrays
        inputs, _ = data.train_batch(backbone, idx)
        if isinstance(inputs, dict) and "attention_mask" in inputs:
            masked = True
            lengths[idx.numpy()] = inputs["attention_mask"].sum(1).numpy()
    if masked:  # similar lengths together: little padding
        order = torch.from_numpy(np.argsort(lengths, kind="stable"))
        batches = list(order.split(batch_size))
    start = np.zeros(n, dtype=np.int64)
    total = int(lengths.sum())
    arrays: dict[int, np.ndarray] = {}
    finals = None
    with atomic_dir(folder) as tmp:
        pos = 0
        for idx in batches:
            inputs, _ = data.train_batch(backbone, idx)
            with autocast(device, precision):
                hidden, ctx = backbone.embed(to_device(inputs, device))
                outs = {}
                for i in range(1, backbone.num_layers + 1):
                    hidden = backbone.block(i, hidden, ctx)
                    if i in model.exit_layers:
                        outs[i] = hidden
                final = backbone.classify(hidden, ctx)
            keep = ctx.mask.bool().cpu() if masked else None
            for i, h in outs.items():
                h = h.float().cpu()
                rows = h[keep] if masked else h  # [tokens of the batch, D] in sample order | [B, T, D]
                if i not in arrays:
                    shape = (total, h.shape[-1]) if masked else (n, *h.shape[1:])
                    arrays[i] = np.lib.format.open_memmap(tmp / f"block{i}.npy", mode="w+",
                                                          dtype=STORE_DTYPE[precision], shape=shape)
                if masked:
                    arrays[i][pos:pos + len(rows)] = _as_stored(rows, precision)
                else:
                    arrays[i][idx.numpy()] = _as_stored(rows, precision)
            if finals is None:
                finals = np.zeros((n, final.shape[-1]), dtype=np.float32)
            finals[idx.numpy()] = final.float().cpu().numpy()
            if masked:
                lens = lengths[idx.numpy()]
                start[idx.numpy()] = pos + np.concatenate([[0], np.cumsum(lens)[:-1]])
                pos += int(lens.sum())
        for a in arrays.values():
            a.flush()
        del arrays
        np.save(tmp / "final_logits.npy", finals, allow_pickle=False)
        if masked:
            np.save(tmp / "start.npy", start, allow_pickle=False)
            np.save(tmp / "lengths.npy", lengths, allow_pickle=False)
        meta = {"format": FORMAT, "key": key, "samples": n, "masked": bool(masked), "precision": precision,
                "layers": list(model.exit_layers)}
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
    model.train(was_training)


class FeatureCache:
    """A written cache, memory-mapped: ``batch(idx)`` assembles the cached inputs of training samples ``idx``."""

    def __init__(self, folder: Path, meta: dict[str, Any]):
        self.folder, self.meta = folder, meta

        def load(name):
            return np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)

        self.blocks = {int(i): load(f"block{i}") for i in meta["layers"]}
        self.final = load("final_logits")
        self.masked = bool(meta["masked"])
        if self.masked:
            self.start, self.lengths = np.asarray(load("start")), np.asarray(load("lengths"))
        n = int(meta["samples"])
        total = int(self.lengths.sum()) if self.masked else n
        if len(self.final) != n or any(len(a) != total for a in self.blocks.values()) or (
                self.masked and (len(self.start) != n or (self.start + self.lengths > total).any())):
            raise ValueError("array sizes disagree with meta.json")

    @classmethod
    def open(cls, folder: Path, key: str, samples: int) -> "FeatureCache | None":
        """The cache in ``folder`` if it is complete and is the one ``key`` names; None if absent. A foreign or
        damaged folder is removed with a warning (it is rebuilt)."""
        if not folder.exists():
            return None
        try:
            if not (folder / "meta.json").is_file():
                raise ValueError("no meta.json")
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("samples") != samples:
                raise ValueError("another cache's meta.json")
            return cls(folder, meta)
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"eebench: warning: feature cache {folder} refused ({err}); rebuilding it", file=sys.stderr,
                  flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def describe(self) -> str:
        size = sum(f.stat().st_size for f in self.folder.iterdir())
        return (f"{self.meta['samples']:,} samples, blocks {self.meta['layers']}, {self.meta['precision']}, "
                f"{size / 1e6:,.1f} MB")

    def _tensor(self, rows: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(rows))
        return t.view(torch.bfloat16).float() if self.meta["precision"] == "bf16" else t.float()

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        ids = idx.numpy()
        out = {FINAL: torch.from_numpy(np.asarray(self.final[ids]))}
        if not self.masked:
            for i, a in self.blocks.items():
                out[f"{BLOCK}{i}"] = self._tensor(a[ids])
            return out
        lens = self.lengths[ids]
        width = int(lens.max())
        pos = np.arange(width)[None, :]
        valid = pos < lens[:, None]
        flat = np.where(valid, self.start[ids][:, None] + pos, 0).ravel()
        mask = torch.from_numpy(valid)
        for i, a in self.blocks.items():
            t = self._tensor(a[flat]).view(len(ids), width, -1)
            out[f"{BLOCK}{i}"] = t.masked_fill_(~mask[..., None], 0.0)
        out[MASK] = mask.long()  # the dtype the text batches' attention_mask has
        return out

    def epoch(self, data, backbone, batch_size: int, generator: torch.Generator) -> Iterator:
        """One epoch of (cached inputs, labels), in the batches ``train_batches`` would draw from ``generator``."""
        for idx in data.train_order(backbone, batch_size, generator):
            yield self.batch(idx), data.train_labels(idx)
