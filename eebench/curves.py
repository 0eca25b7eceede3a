"""Policy × threshold grid on the exit-logit cache → an operating curve (accuracy, MACs, speed-ups per point)."""
from __future__ import annotations

import itertools
import json
from typing import Any, Iterator

import pandas as pd
import torch

from .errors import fail
from .measure.macs import CONVENTIONS, class_polys, cumulative_macs, text_period
from .measure.speedup import expected_macs, layer_speedup
from .metrics import get_metric
from .policies import policy_for_rows
from .policies.base import Decision, decide_at


def sweep_points(policy: dict[str, Any]) -> list[dict[str, Any]]:
    sweep = policy.get("sweep") or {}
    keys = sorted(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))] or [{}]


def logged_layers(row_layers: list[int], num_layers: int, convention: str = "correct") -> torch.Tensor:
    """The exit layer recorded for an answer from each row, which the layer-based speed-up averages.

    ``correct``: the block after which the row answers. ``as_coded``: the official Swin code's off-by-one (spec
    methods §4.2) — an early exit is logged one block too early (earlier stages' blocks + the 0-based index inside
    the stage) and a full run as L — so Swin speed-ups come out as the paper reports them.
    """
    layers = torch.tensor(row_layers)
    if convention == "correct":
        return layers
    if convention == "as_coded":
        return torch.cat([layers[:-1] - 1, torch.tensor([num_layers])])
    raise fail(f"unknown exit_layer_convention {convention!r}", "use 'correct' or 'as_coded' (LGViT's Swin code)")


def per_sample_macs(costs: dict[str, Any], convention: str, lengths: torch.Tensor) -> torch.Tensor:
    """[rows, N]: what sample n costs when it stops at row r, at its own (unpadded) length L_n (each sample on the
    polynomial of its residue class L_n mod the costs' period)."""
    period = text_period(costs)
    length = lengths.double()[None, :]
    out = torch.zeros(len(costs["row_layers"]), len(lengths), dtype=torch.float64)
    for r in range(period):
        terms = [cumulative_macs(costs, convention, term=k, residue=r) for k in range(3)]
        value = terms[0][:, None] + terms[1][:, None] * length + terms[2][:, None] * length ** 2
        out = torch.where((lengths % period == r)[None, :], value, out)
    return out


def backbone_macs(costs: dict[str, Any], convention: str, lengths: torch.Tensor) -> torch.Tensor:
    """[N]: the plain backbone (embedding, every block, final classifier; no exit heads) at each sample's length."""
    comps = costs["components"]
    names = ["embed", *[f"block{i}" for i in range(1, costs["row_layers"][-1] + 1)], "final"]
    period = text_period(costs)
    length = lengths.double()
    out = torch.zeros(len(lengths), dtype=torch.float64)
    for r in range(period):
        coef = [sum(class_polys(comps[n]["macs_poly"][convention])[r][k] for n in names) for k in range(3)]
        out = torch.where(lengths % period == r, coef[0] + coef[1] * length + coef[2] * length ** 2, out)
    return out


def sweep_decisions(cache: dict[str, Any], policy: dict[str, Any]) -> Iterator[tuple[dict[str, Any], Decision]]:
    """Each sweep point of ``policy`` with the per-sample decision it makes on a logit cache: what an operating
    curve averages, and what the leaderboard's per-sample records (bootstrap, paired tests) keep sample by sample."""
    logits = cache["logits"]
    single = logits.shape[0] == 1  # no exits: every policy answers with the final classifier
    for point in sweep_points(policy)[:1] if single else sweep_points(policy):
        if single and logits.shape[-1] == 1:  # a regression backbone without exits: its one output, no exit rule
            decision = decide_at(logits, torch.zeros(logits.shape[1], dtype=torch.long), regression=True)
        else:
            decision = policy_for_rows(policy["name"], {**policy.get("params", {}), **point},
                                       cache["row_layers"]).decide(logits, **cache.get("extra", {}))
        yield point, decision


def operating_curve(cache: dict[str, Any], policy: dict[str, Any], costs: dict[str, Any]) -> pd.DataFrame:
    """One row per sweep point. ``accuracy`` is top-1 accuracy; ``score`` is the task's metric (``metric`` names it:
    accuracy for images, MCC for CoLA, …), which operating points, AUCs and tables read. Text adds ``*_real``
    columns: MACs charged per sample at its real length (the plain columns pad every sample to the costs' length),
    and FLOPs = 2 × MACs of the full convention (attention included)."""
    logits, labels = cache["logits"], cache["labels"]
    metric = get_metric(cache.get("metric"))
    lengths = cache.get("lengths")
    real = {conv: per_sample_macs(costs, conv, lengths) for conv in CONVENTIONS} if lengths is not None else {}
    plain_real = {conv: float(backbone_macs(costs, conv, lengths).mean()) for conv in real}
    samples = torch.arange(logits.shape[1])
    num_layers = cache["num_layers"]
    convention = policy.get("exit_layer_convention", "correct")
    logged = logged_layers(cache["row_layers"], num_layers, convention)
    as_coded = logged_layers(cache["row_layers"], num_layers, "as_coded")
    cumulative = {conv: cumulative_macs(costs, conv) for conv in CONVENTIONS}
    plain = {conv: costs["macs"][conv]["backbone"] for conv in CONVENTIONS}
    # COST-EFF's own count (torch.profiler FLOPs at 128 padded tokens), where the costs carry it
    profiled = (torch.tensor(costs["profiler_flops"]["cumulative"], dtype=torch.float64)
                if "profiler_flops" in costs else None)
    rows = []
    for point, decision in sweep_decisions(cache, policy):
        executed = logged[decision.compute_index]
        row = {"policy": policy["name"], **{f"param_{k}": v for k, v in point.items()},
               "accuracy": (float((decision.prediction == labels).double().mean()) if not labels.is_floating_point()
                            else float("nan")),  # regression has no accuracy
               "metric": metric.name, "score": metric.score(decision.prediction.numpy(), labels.numpy()),
               "exit_layer_convention": convention,
               "avg_exit_layer": float(logged[decision.exit_index].double().mean()),
               "avg_executed_layers": float(executed.double().mean()),
               "layer_speedup": layer_speedup(executed, num_layers),
               # the official Swin code's logging (spec methods §4.2), which the paper's Swin speed-ups carry
               "layer_speedup_as_coded": layer_speedup(as_coded[decision.compute_index], num_layers)}
        for conv in CONVENTIONS:
            macs = expected_macs(decision.compute_index, cumulative[conv])
            row[f"expected_macs_{conv}"] = macs
            row[f"head_aware_speedup_{conv}"] = plain[conv] / macs
        for conv, table in real.items():
            macs = float(table[decision.compute_index, samples].mean())
            row[f"expected_macs_{conv}_real"] = macs
            row[f"head_aware_speedup_{conv}_real"] = plain_real[conv] / macs
        if real:
            row["expected_flops_full_real"] = 2 * row["expected_macs_full_real"]
            row["expected_flops_full"] = 2 * row["expected_macs_full"]
        if profiled is not None:
            row["expected_flops_profiler"] = float(profiled[decision.compute_index].mean())
        hist = torch.bincount(decision.exit_index, minlength=logits.shape[0]).tolist()
        row["exit_histogram"] = json.dumps(dict(zip(cache["row_layers"], hist)))
        rows.append(row)
    return pd.DataFrame(rows)
