"""Hierarchical (Swin) backbones seen as one list of blocks numbered 1…L across stages.

Between stages a patch merging halves the grid and doubles the width. An exit after a stage's last block reads that
stage's output *before* the merging (LGViT's LPH after block 4 of Swin-B has width 256, spec methods §1.2), so each
merging runs, and is charged, with the first block of the next stage. HF transformers keeps the merging at the end of
a stage and timm at the start of the next (``merge_at``); everything else is shared by both adapters.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .base import TokenLayout

CONTAINERS = (nn.ModuleList, nn.Sequential)


@dataclass(frozen=True)
class Stage:
    blocks: tuple[nn.Module, ...]
    block_names: tuple[str, ...]  # dotted names inside the adapter
    merge: nn.Module | None  # the patch merging that feeds this stage (None for the first)
    merge_name: str | None
    in_grid: tuple[int, int]  # grid entering the merging (= ``layout.grid`` when there is none)
    layout: TokenLayout


def _shallowest(candidates: list[tuple[str, nn.Module]]) -> tuple[str, nn.Module] | None:
    return min(candidates, key=lambda item: item[0].count("."), default=None)


def _blocks_in(stage: nn.Module, depth: int) -> tuple[str, nn.Module] | None:
    return _shallowest([(n, m) for n, m in stage.named_modules()
                        if n and isinstance(m, CONTAINERS) and len(m) == depth])


def _merge_in(stage: nn.Module, blocks_name: str) -> tuple[str, nn.Module] | None:
    """The child that is not the block list and has weights (timm's first stage holds an ``Identity``)."""
    found = [(n, m) for n, m in stage.named_children()
             if n != blocks_name.split(".")[0] and next(m.parameters(), None) is not None]
    if len(found) > 1:
        raise RuntimeError(f"{type(stage).__name__} has several candidate patch mergings: {[n for n, _ in found]}")
    return found[0] if found else None


def find_stages(model: nn.Module, depths: list[int], widths: list[int], grid: tuple[int, int], merge_at: str,
                prefix: str = "model") -> list[Stage]:
    """Locate stages, their blocks and mergings through the model's structure, not fixed module paths (names moved
    between transformers releases): the shallowest list of ``len(depths)`` modules whose i-th holds a list of
    ``depths[i]`` blocks."""
    if merge_at not in ("end", "start"):
        raise ValueError(f"merge_at must be 'end' or 'start', not {merge_at!r}")
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, CONTAINERS) and len(m) == len(depths)
             and all(_blocks_in(st, d) is not None for st, d in zip(m, depths))]
    found = _shallowest(lists)
    if found is None:
        raise RuntimeError(f"no {len(depths)} stages of {depths} blocks found in {type(model).__name__}")
    stages_name, stage_list = found
    located = []
    for s, stage in enumerate(stage_list):
        blocks_name, blocks = _blocks_in(stage, depths[s])
        located.append((f"{prefix}.{stages_name}.{s}", blocks_name, blocks, _merge_in(stage, blocks_name)))

    merges = [(f"{stage_name}.{m[0]}", m[1]) if m else None for stage_name, _, _, m in located]
    stray = merges[-1] if merge_at == "end" else merges[0]
    if stray is not None:
        raise RuntimeError(f"unexpected patch merging {stray[0]!r} outside the stage boundaries")
    feeding = [None, *merges[:-1]] if merge_at == "end" else merges
    out, (h, w) = [], grid
    for (stage_name, blocks_name, blocks, _), merge in zip(located, feeding):
        in_grid = (h, w)
        merge_name, merge_module = merge if merge is not None else (None, None)
        if merge is not None:
            h, w = (h + 1) // 2, (w + 1) // 2
        out.append(Stage(blocks=tuple(blocks),
                         block_names=tuple(f"{stage_name}.{blocks_name}.{j}" for j in range(len(blocks))),
                         merge=merge_module, merge_name=merge_name, in_grid=in_grid,
                         layout=TokenLayout(widths[len(out)], (), (h, w), "mean")))
    return out


class StageMap:
    """Global block index (1-based) → (stage, index inside the stage), per-block layouts and cost components."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        self._where = [(stage, j) for stage in stages for j in range(len(stage.blocks))]

    def __len__(self) -> int:
        return len(self._where)

    def locate(self, index: int) -> tuple[Stage, int]:
        if not 1 <= index <= len(self._where):
            raise IndexError(f"block {index} is outside 1..{len(self._where)}")
        return self._where[index - 1]

    def layout(self, index: int) -> TokenLayout:
        return self.locate(index)[0].layout

    def components(self) -> dict[str, list[str]]:
        """``block{i}`` → its module, plus the patch merging that precedes it for a stage's first block."""
        comps = {}
        for i, (stage, j) in enumerate(self._where, start=1):
            comps[f"block{i}"] = [stage.block_names[j]] + ([stage.merge_name] if j == 0 and stage.merge else [])
        return comps
