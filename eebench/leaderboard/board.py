"""The ranked board of a results store: scores per method and seed, mean ± std over seeds, a bootstrap interval over
test samples for the area score, the pairwise area-between-curves matrix, Pareto membership, and the paper's
published rows kept apart as "reported"."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ..report.retention import DEFAULT, backbone_row
from . import scores
from .store import STATIC


def _front(points: pd.DataFrame):
    return scores.envelope(points["layer_speedup"], points["metric_value"])


def seed_scores(points: pd.DataFrame, base_metric: float | None, ref: pd.DataFrame | None, opts: dict) -> dict:
    """Every score of one method and seed, from its swept points, the metric its retentions are read against
    (:func:`retention_metric`) and the ELUE reference curve."""
    conv, (lo, hi) = opts["macs_convention"], opts["speedup_range"]
    front = _front(points)
    out: dict[str, Any] = {"area": scores.area(front, lo, hi)}
    for s in opts["speedups"]:
        out[f"at_{s:g}x"] = scores.value_at(front, s)
    for r in opts["retention"]:
        out[f"speedup_at_{r * 100:g}"] = (scores.max_speedup_at(front, r * base_metric)
                                          if base_metric is not None else None)
    macs = points[f"expected_macs_{conv}"]
    out["elue"] = (scores.elue_gain(macs, points["metric_value"], ref[f"expected_macs_{conv}"], ref["metric_value"])
                   if ref is not None and len(ref) else None)
    return out


def retention_metric(points: pd.DataFrame, base: pd.Series | None, reference: str) -> float | None:
    """What a "speed-up @ ≥ q %" is q % of, for one method and seed (``eebench.report.retention``): the backbone row's
    metric on the same seed (``base``: its metric values; None where it has no row for the seed), or the method's
    own full-depth metric (its slowest point) where ``reference`` is ``own``."""
    if reference == "own":
        return float(points.loc[points["layer_speedup"].idxmin(), "metric_value"])
    return float(base.iloc[0]) if base is not None and len(base) else None


def _mean_std(values) -> tuple[float | None, float | None]:
    v = [x for x in values if x is not None and not (isinstance(x, float) and np.isnan(x))]
    if len(v) < len(values) or not v:  # a score some seed cannot reach is not averaged over the others
        return None, None
    return float(np.mean(v)), float(np.std(v, ddof=0))


def reference_curve(store: pd.DataFrame, reference: str | None, seed: int,
                    conv: str) -> tuple[str | None, pd.DataFrame]:
    """ELUE-style reference: the truncated exits of the reference multi-exit model plus the backbone's full-depth
    point (the backbone truncated at each exit, as far as a run has one)."""
    static = store[store["policy"] == STATIC]
    name = reference if reference in set(static["method"]) else (static["method"].iloc[0] if len(static) else None)
    if name is None:
        return None, pd.DataFrame()
    ref = static[(static["method"] == name) & (static["seed"] == seed)]
    base = store[(store["exit_positions"] == "[]") & (store["seed"] == seed) & (store["policy"] != STATIC)]
    return name, pd.concat([ref, base])


def bootstrap_area(samples: dict[int, list[tuple[np.ndarray, np.ndarray, int]]], lo: float, hi: float,
                   n_boot: int, seed: int = 0) -> tuple[float, float] | None:
    """95 % interval of the seed-mean area score, resampling test samples (the same resample for every seed: they
    share one test split). ``samples[seed]`` = per swept point (correct[N], executed layers[N], L)."""
    if not samples or n_boot <= 0:
        return None
    n = len(next(iter(samples.values()))[0][0])
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1 / n), size=n_boot).astype(float)  # [B, N] counts
    total = np.zeros(n_boot)
    for pts in samples.values():
        correct = np.stack([c for c, _, _ in pts]).astype(float)  # [P, N]
        executed = np.stack([e for _, e, _ in pts]).astype(float)
        depth = pts[0][2]
        acc = weights @ correct.T / n  # [B, P]
        speed = depth / (weights @ executed.T / n)
        total += [scores.area(scores.envelope(speed[b], acc[b]), lo, hi) for b in range(n_boot)]
    dist = total / len(samples)
    return float(np.percentile(dist, 2.5)), float(np.percentile(dist, 97.5))


def per_sample(cache: dict, policy: dict) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Replay a policy's sweep on a logit cache, keeping per-sample correctness and executed depth (what the curve's
    accuracy and layer speed-up average): the curve's own decisions (``curves.sweep_decisions``)."""
    from ..curves import logged_layers, sweep_decisions

    labels = cache["labels"]
    logged = logged_layers(cache["row_layers"], cache["num_layers"], policy.get("exit_layer_convention", "correct"))
    return [((d.prediction == labels).numpy(), logged[d.compute_index].numpy(), cache["num_layers"])
            for _, d in sweep_decisions(cache, policy)]


def leaderboard(store: pd.DataFrame, opts: dict, samples: dict | None = None) -> dict[str, Any]:
    """→ {"board": ranked DataFrame (raw numbers), "pairwise": {row: {column: area_between}}, "reference": name,
    "baseline": the no-exit method, "means": seed-mean points, "retention_reference": {asked, used, row}: what the
    speed-up @ ≥ q % scores were read against}."""
    conv, (lo, hi) = opts["macs_convention"], opts["speedup_range"]
    swept = store[store["policy"] != STATIC]
    # a point without finite coordinates is no measurement: never ranked, averaged or on the front (``validate``
    # refuses a store holding one; this keeps the ranking honest for a caller that did not validate)
    measured = swept[["metric_value", "layer_speedup", f"expected_macs_{conv}"]].to_numpy(float)
    swept = swept[np.isfinite(measured).all(axis=1)]
    no_exits = set(swept.loc[swept["exit_positions"] == "[]", "method"])
    base = backbone_row(dict.fromkeys(swept["method"]), lambda m: m not in no_exits)
    asked = opts.get("retention_reference", DEFAULT)
    used = "backbone" if asked == "backbone" and base is not None else "own"
    # mean over seeds at each setting: the points Pareto membership and the plot use
    keys = ["method", "policy", "policy_params"]
    cols = ["metric_value", "layer_speedup", f"expected_macs_{conv}"]
    means = swept.groupby(keys, sort=False)[cols].mean().reset_index()
    on_front = scores.pareto_mask(means[f"expected_macs_{conv}"], means["metric_value"])
    means["pareto"] = on_front
    rows, fronts, ref_name = [], {}, None
    for method, grp in swept.groupby("method", sort=False):
        per_seed = []
        for seed, pts in grp.groupby("seed"):
            b = swept[(swept["method"] == base) & (swept["seed"] == seed)]["metric_value"] if base else None
            ref_name, ref = reference_curve(store, opts.get("reference"), seed, conv)
            per_seed.append(seed_scores(pts, retention_metric(pts, b, used), ref, opts))
        row = {"method": method, "title": grp["title"].iloc[0], "seeds": int(grp["seed"].nunique()),
               "has_exits": grp["exit_positions"].iloc[0] != "[]"}
        for k in per_seed[0]:
            row[f"{k}_mean"], row[f"{k}_std"] = _mean_std([s[k] for s in per_seed])
        mpts = means[means["method"] == method]
        row["pareto_points"] = int(mpts["pareto"].sum())
        row["points"] = int(len(mpts))
        row["params"] = int(grp["params"].iloc[0])
        row["full_macs"] = float(grp[f"full_macs_{conv}"].iloc[0])
        row["min_macs"] = float(mpts[f"expected_macs_{conv}"].min())
        ci = bootstrap_area((samples or {}).get(method, {}), lo, hi, opts.get("bootstrap", 0))
        row["area_ci_lo"], row["area_ci_hi"] = ci if ci else (None, None)
        row["highlight"] = method in (opts.get("highlight") or [])
        row["retention_reference"], row["retention_reference_row"] = used, base if used == "backbone" else None
        rows.append(row)
        fronts[method] = _front(mpts)
    board = pd.DataFrame(rows)
    ranked = board[board["has_exits"]].sort_values("area_mean", ascending=False, kind="stable")
    board = pd.concat([ranked, board[~board["has_exits"]]], ignore_index=True)
    board.insert(0, "rank", [i + 1 if e else None for i, e in enumerate(board["has_exits"])])
    board["rank"] = board["rank"].astype("Int64")
    names = list(ranked["method"])
    pair = {a: {b: None if a == b else scores.area_between(fronts[a], fronts[b], lo, hi) for b in names}
            for a in names}
    return {"board": board, "pairwise": pair, "reference": ref_name, "baseline": base, "means": means,
            "retention_reference": {"asked": asked, "used": used, "row": base if used == "backbone" else None}}


def reported_rows(setting: dict | None) -> pd.DataFrame:
    """The LGViT paper's Table 1 rows of the setting this run stands in for: shown, never ranked (other scale)."""
    from ..report.paper_vs_ours import load_paper

    if not setting:
        return pd.DataFrame()
    cells = [c for c in load_paper()["tables"]["table1"]["cells"]
             if c["backbone"] == setting.get("backbone") and c["dataset"] == setting.get("dataset")]
    return pd.DataFrame([{"method": c["method"], "accuracy (%)": c["accuracy"], "MACs (G)": c["macs_g"],
                          "speed-up (×)": c["speedup"], "#params (M)": c["params_m"]} for c in cells])


def options(config: dict, highlight=None) -> dict:
    rep, lb = config["report"], config.get("leaderboard") or {}
    return {"macs_convention": rep.get("macs_convention", "paper"),
            "speedup_range": list(rep.get("auc_speedup_range", [1.0, 3.0])),
            "speedups": lb.get("speedups", [1.5, 2.0, 3.0]), "retention": lb.get("retention", [0.99, 0.985]),
            "retention_reference": rep.get("retention_reference", DEFAULT),
            "reference": lb.get("reference", "sdn"), "bootstrap": lb.get("bootstrap", 200),
            "highlight": list(highlight if highlight is not None else lb.get("highlight", [])),
            "paper_setting": rep.get("paper_setting")}


def as_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
