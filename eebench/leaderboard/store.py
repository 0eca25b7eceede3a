"""The results store: every operating point of every method, run and seed as one long-format table (parquet + CSV
mirror), each row carrying the protocol it was measured under and its provenance. ``merge`` combines stores (keep the
last row per key); ``validate`` refuses rows measured under another protocol."""
from __future__ import annotations

import json
from pathlib import Path
import pandas as pd

from ..errors import fail
from ..io import atomic_path, read_json

KEY = ["run", "method", "backbone", "dataset", "seed", "policy", "policy_params"]
# what must agree between rows for them to be ranked together (``sweep`` per policy: a method's grid)
PROTOCOL = ["dataset", "split", "backbone", "checkpoint", "macs_convention", "metric"]
PROVENANCE = ["eebench", "git_commit", "python", "torch", "transformers", "timm", "fvcore", "device", "dtype"]


def metric_of(curve: pd.DataFrame) -> tuple[str, str]:
    """(metric name, column holding it): a curve that names its metric (a ``metric`` column) is read by that name,
    else it is top-1 accuracy. The one place the leaderboard decides which number it ranks."""
    if "metric" in curve.columns and curve["metric"].notna().any():
        name = str(curve["metric"].dropna().iloc[0])
        return name, name if name in curve.columns else "accuracy"
    return "accuracy", "accuracy"


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def store_rows(plan) -> pd.DataFrame:
    """The store of one run, from its operating curves and cost counts (what the DAG has already computed)."""
    from ..device import effective_precision, resolve_device
    from ..plan import costs_path, curve_path
    from ..provenance import provenance

    cfg = plan.config
    prov = provenance(cfg["training"].get("device", "cpu"))
    # the autocast dtype on the device this run resolves to (precision on a GPU, cpu_precision on a CPU)
    dtype = effective_precision(cfg["training"], resolve_device(cfg["training"].get("device")))
    conv = cfg["report"].get("macs_convention", "paper")
    split = {k: v for k, v in cfg["dataset"].items() if k != "name"}
    frames = []
    for method in plan.methods:
        m = plan.method(method)
        costs = read_json(costs_path(plan.run, plan.cost_canonical[method]))
        for seed in plan.seeds:
            curve = pd.read_csv(curve_path(plan.run, method, seed))
            name, col = metric_of(curve)
            params = [c for c in curve.columns if c.startswith("param_")]
            full = {c: costs["macs"][c]["backbone"] + costs["macs"][c]["heads"] for c in costs["macs"]}
            frames.append(static_rows(plan, method, seed, costs, name) if m["exit_layers"] else pd.DataFrame())
            frames.append(pd.DataFrame({
                "run": plan.run, "method": method, "title": m["title"], "backbone": cfg["backbone"]["name"],
                "dataset": cfg["dataset"]["name"], "split": _json(split),
                "checkpoint": str(cfg["backbone"].get("pretrained", True)), "seed": int(seed),
                "exit_positions": _json(m["exit_layers"]), "heads": _json(sorted({h["type"] for h in m["heads"]})),
                "policy": curve["policy"], "sweep": _json(m["policy"].get("sweep") or {} if m["exit_layers"] else {}),
                "policy_params": [_json({p[6:]: r[p] for p in params}) for _, r in curve.iterrows()],
                "metric": name, "metric_value": curve[col].astype(float),
                "expected_macs_paper": curve["expected_macs_paper"], "expected_macs_full": curve["expected_macs_full"],
                "layer_speedup": curve["layer_speedup"],
                "head_aware_speedup_paper": curve["head_aware_speedup_paper"],
                "head_aware_speedup_full": curve["head_aware_speedup_full"],
                "avg_exit_layer": curve["avg_exit_layer"], "exit_histogram": curve["exit_histogram"],
                "params": int(costs["params"]["total"]),
                "full_macs_paper": full["paper"], "full_macs_full": full["full"],
                "macs_convention": conv, "macs_counter": _json(costs.get("macs_config", {})),
                **{k: (dtype if k == "dtype" else prov.get(k)) for k in PROVENANCE},
                "created": prov["created"]}))
    df = pd.concat(frames, ignore_index=True)
    fill = ["run", "title", "backbone", "dataset", "split", "checkpoint", "exit_positions", "heads", "params",
            "full_macs_paper", "full_macs_full", "macs_convention", "macs_counter", *PROVENANCE, "created"]
    # static-exit rows take the protocol and provenance columns of their method's policy rows
    df[fill] = df.groupby("method")[fill].transform(lambda c: c.ffill().bfill())
    return df


STATIC = "static_exit"


def static_rows(plan, method: str, seed: int, costs: dict, metric: str) -> pd.DataFrame:
    """The truncated-exit points of a multi-exit model: every sample answers at exit k, for each k (from the logit
    cache). Not ranked; the reference method's rows are the ELUE-style reference curve. Accuracy only: a metric
    other than accuracy leaves these rows out."""
    from ..evaluate import load_cache
    from ..measure.macs import cumulative_macs

    if metric != "accuracy":
        return pd.DataFrame()
    cache = load_cache(plan.final_logits(method, seed))
    layers = list(cache["row_layers"])
    acc = (cache["logits"].argmax(-1) == cache["labels"]).double().mean(dim=1).tolist()
    cum = {c: cumulative_macs(costs, c).tolist() for c in ("paper", "full")}
    n = int(cache["labels"].numel())
    return pd.DataFrame({
        "method": method, "seed": int(seed), "policy": STATIC, "sweep": _json({}),
        "policy_params": [_json({"exit_layer": int(l)}) for l in layers], "metric": metric, "metric_value": acc,
        "expected_macs_paper": cum["paper"], "expected_macs_full": cum["full"],
        "layer_speedup": [cache["num_layers"] / l for l in layers],
        "head_aware_speedup_paper": [costs["macs"]["paper"]["backbone"] / v for v in cum["paper"]],
        "head_aware_speedup_full": [costs["macs"]["full"]["backbone"] / v for v in cum["full"]],
        "avg_exit_layer": [float(l) for l in layers], "exit_histogram": [_json({str(l): n}) for l in layers]})


def write_store(df: pd.DataFrame, parquet: str | Path, csv: str | Path | None = None) -> None:
    df = df.astype({c: "string" for c in ("git_commit", "timm", "transformers", "fvcore") if c in df})
    with atomic_path(parquet) as tmp:
        df.to_parquet(tmp, index=False)
    if csv:
        with atomic_path(csv) as tmp:
            df.to_csv(tmp, index=False)


def read_store(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise fail(f"results store {path} does not exist", "run snakemake (it writes results/<run>/store.parquet)")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:
        raise fail(f"results store {path} is unreadable ({type(err).__name__})", "rewrite it with eebench") from err
    missing = [c for c in KEY + PROTOCOL + ["sweep", "metric_value"] if c not in df.columns]
    if missing:
        raise fail(f"results store {path} lacks column(s) {missing}", "it was not written by eebench's store rule")
    return df


def validate(df: pd.DataFrame, reference: pd.DataFrame | None = None) -> None:
    """Every row must share the reference's protocol (default: the store's first row); rows of one policy must share
    its sweep grid. The first difference is one error line naming the field."""
    ref = (reference if reference is not None and len(reference) else df).iloc[0]
    for i, row in df.reset_index(drop=True).iterrows():
        for field in PROTOCOL:
            if str(row[field]) != str(ref[field]):
                raise fail(f"store row {i} ({row['method']}, seed {row['seed']}): {field} {row[field]!r} differs from "
                           f"the leaderboard's {ref[field]!r}",
                           f"only rows of one protocol are ranked together; rerun with {field} = {ref[field]!r}")
    both = pd.concat([reference, df]) if reference is not None else df
    for policy, grp in both[both["exit_positions"] != "[]"].groupby("policy"):  # a model without exits sweeps nothing
        if grp["sweep"].nunique() > 1:
            raise fail(f"policy {policy!r} has rows from different sweep grids ({', '.join(grp['sweep'].unique())})",
                       "compare a policy on one sweep grid (the recipe's)")


def merge(stores: list[pd.DataFrame]) -> pd.DataFrame:
    """Stores from several machines → one; a row key (run, method, backbone, dataset, seed, policy, setting) seen
    twice keeps the later store's row (benchopt's ``merge --keep last``). Protocols must agree."""
    validate(stores[0])
    for s in stores[1:]:
        validate(s, stores[0])
    both = pd.concat(stores, ignore_index=True)
    return both.drop_duplicates(subset=KEY, keep="last").reset_index(drop=True)
