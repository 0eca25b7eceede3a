"""Policy × threshold grid on the exit-logit cache → an operating curve (accuracy, MACs, speed-ups per point)."""
from __future__ import annotations

import itertools
import json
from typing import Any

import pandas as pd
import torch

from .measure.macs import CONVENTIONS, cumulative_macs
from .measure.speedup import expected_macs, layer_speedup
from .policies import build_policy


def sweep_points(policy: dict[str, Any]) -> list[dict[str, Any]]:
    sweep = policy.get("sweep") or {}
    keys = sorted(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))] or [{}]


def operating_curve(cache: dict[str, Any], policy: dict[str, Any], costs: dict[str, Any]) -> pd.DataFrame:
    logits, labels = cache["logits"], cache["labels"]
    row_layers = torch.tensor(cache["row_layers"])
    num_layers = cache["num_layers"]
    cumulative = {conv: cumulative_macs(costs, conv) for conv in CONVENTIONS}
    plain = {conv: costs["macs"][conv]["backbone"] for conv in CONVENTIONS}
    single = logits.shape[0] == 1  # no exits: every policy answers with the final classifier
    rows = []
    for point in sweep_points(policy)[:1] if single else sweep_points(policy):
        decision = build_policy(policy["name"], **{**policy.get("params", {}), **point}).decide(
            logits, **cache.get("extra", {}))
        executed = row_layers[decision.compute_index]
        row = {"policy": policy["name"], **{f"param_{k}": v for k, v in point.items()},
               "accuracy": float((decision.prediction == labels).double().mean()),
               "avg_exit_layer": float(row_layers[decision.exit_index].double().mean()),
               "avg_executed_layers": float(executed.double().mean()),
               "layer_speedup": layer_speedup(executed, num_layers)}
        for conv in CONVENTIONS:
            macs = expected_macs(decision.compute_index, cumulative[conv])
            row[f"expected_macs_{conv}"] = macs
            row[f"head_aware_speedup_{conv}"] = plain[conv] / macs
        hist = torch.bincount(decision.exit_index, minlength=logits.shape[0]).tolist()
        row["exit_histogram"] = json.dumps(dict(zip(cache["row_layers"], hist)))
        rows.append(row)
    return pd.DataFrame(rows)
