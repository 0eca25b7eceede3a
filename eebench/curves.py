"""Policy × threshold grid on the exit-logit cache → an operating curve (accuracy, MACs, speed-ups per point)."""
from __future__ import annotations

import itertools
import json
from typing import Any

import pandas as pd
import torch

from .errors import fail
from .measure.macs import CONVENTIONS, cumulative_macs
from .measure.speedup import expected_macs, layer_speedup
from .policies import policy_for_rows


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


def operating_curve(cache: dict[str, Any], policy: dict[str, Any], costs: dict[str, Any]) -> pd.DataFrame:
    logits, labels = cache["logits"], cache["labels"]
    num_layers = cache["num_layers"]
    convention = policy.get("exit_layer_convention", "correct")
    logged = logged_layers(cache["row_layers"], num_layers, convention)
    as_coded = logged_layers(cache["row_layers"], num_layers, "as_coded")
    cumulative = {conv: cumulative_macs(costs, conv) for conv in CONVENTIONS}
    plain = {conv: costs["macs"][conv]["backbone"] for conv in CONVENTIONS}
    single = logits.shape[0] == 1  # no exits: every policy answers with the final classifier
    rows = []
    for point in sweep_points(policy)[:1] if single else sweep_points(policy):
        decision = policy_for_rows(policy["name"], {**policy.get("params", {}), **point}, cache["row_layers"]).decide(
            logits, **cache.get("extra", {}))
        executed = logged[decision.compute_index]
        row = {"policy": policy["name"], **{f"param_{k}": v for k, v in point.items()},
               "accuracy": float((decision.prediction == labels).double().mean()),
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
        hist = torch.bincount(decision.exit_index, minlength=logits.shape[0]).tolist()
        row["exit_histogram"] = json.dumps(dict(zip(cache["row_layers"], hist)))
        rows.append(row)
    return pd.DataFrame(rows)
