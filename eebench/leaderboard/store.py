"""The results store: every operating point of every method, run and seed as one long-format table (parquet + CSV
mirror), each row carrying the protocol it was measured under and its provenance. ``merge`` combines stores (keep the
last row per key); ``validate`` refuses rows measured under another protocol.

A store may come from someone else, so nothing in it is trusted: every column of the schema below must be there with
its type, every score, speed-up and MAC count must be a finite number, JSON fields must parse, and a key (one
operating point of one method, run and seed) must not occur twice. The first violation is one error line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import fail
from ..io import atomic_paths, read_json, writing

# one operating point: a method's row in one run and seed, at one setting of its policy's swept parameters
KEY = ["run", "method", "backbone", "dataset", "seed", "policy", "policy_params"]
# what must agree between rows for them to be ranked together (``sweep`` per policy: a method's grid)
PROTOCOL = ["dataset", "split", "backbone", "checkpoint", "macs_convention", "metric"]
PROVENANCE = ["eebench", "git_commit", "python", "torch", "transformers", "timm", "fvcore", "device", "dtype"]
# the schema (what ``store_rows`` writes). Provenance fields may be empty (a package that is not installed); no other.
TEXT = ["run", "method", "title", "backbone", "dataset", "checkpoint", "policy", "metric", "macs_convention",
        "created"]
JSON_FIELDS = {"split": dict, "exit_positions": list, "heads": list, "sweep": dict, "policy_params": dict,
               "exit_histogram": dict, "macs_counter": dict}
INTEGER = ["seed", "params"]
SPEEDUPS = ["layer_speedup", "head_aware_speedup_paper", "head_aware_speedup_full"]
MACS = ["expected_macs_paper", "expected_macs_full", "full_macs_paper", "full_macs_full"]
NUMBER = ["metric_value", *SPEEDUPS, *MACS, "avg_exit_layer"]
COLUMNS = [*TEXT, *JSON_FIELDS, *INTEGER, *NUMBER, *PROVENANCE]
FORMATS = (".parquet", ".csv")
REWRITE = "write stores with eebench (run-store, merge), which writes every column with its type"
NON_FINITE_FIX = ("only measured numbers are ranked (finite scores, positive speed-ups, MAC counts ≥ 0): rerun the "
                  "run's curves and store (snakemake), or drop the row")


def metric_of(curve: pd.DataFrame) -> tuple[str, str]:
    """(metric name, column holding it): a curve that names its metric (a ``metric`` column) holds it in a column of
    that name or, as ``eebench.curves`` writes it, in ``score``; a curve that names none is top-1 accuracy. The one
    place the leaderboard decides which number it ranks."""
    if "metric" in curve.columns and curve["metric"].notna().any():
        name = str(curve["metric"].dropna().iloc[0])
        return name, next((c for c in (name, "score") if c in curve.columns), "accuracy")
    return "accuracy", "accuracy"


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def key_text(row) -> str:
    """A row's ``KEY`` fields as one JSON text (the seed as an integer): how a board's per-sample records
    (``eebench.leaderboard.samples``) name the store row they belong to."""
    return json.dumps({k: int(row[k]) if k == "seed" else str(row[k]) for k in KEY}, sort_keys=True)


def point_params(curve: pd.DataFrame) -> list[str]:
    """Each curve row's ``policy_params``: its swept parameters as JSON text (one code path for the store and the
    per-sample records, so their keys agree)."""
    params = [c for c in curve.columns if c.startswith("param_")]
    return [_json({p[6:]: r[p] for p in params}) for _, r in curve.iterrows()]


def static_params(row_layers) -> list[str]:
    """The ``policy_params`` of a model's truncated-exit rows, one per row."""
    return [_json({"exit_layer": int(l), "row": k + 1}) for k, l in enumerate(row_layers)]


def has_static_rows(method: dict, metric: str) -> bool:
    """Whether the store holds a method's truncated-exit rows: a multi-exit model on an accuracy task."""
    return bool(method["exit_layers"]) and metric == "accuracy"  # static_rows' own condition


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
            full = {c: costs["macs"][c]["backbone"] + costs["macs"][c]["heads"] for c in costs["macs"]}
            frames.append(static_rows(plan, method, seed, costs, name) if has_static_rows(m, name) else pd.DataFrame())
            frames.append(pd.DataFrame({
                "run": plan.run, "method": method, "title": m["title"], "backbone": cfg["backbone"]["name"],
                "dataset": cfg["dataset"]["name"], "split": _json(split),
                "checkpoint": str(cfg["backbone"].get("pretrained", True)), "seed": int(seed),
                "exit_positions": _json(m["exit_layers"]), "heads": _json(sorted({h["type"] for h in m["heads"]})),
                "policy": curve["policy"], "sweep": _json(m["policy"].get("sweep") or {} if m["exit_layers"] else {}),
                "policy_params": point_params(curve),
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
    return df.astype({"params": "int64"})


STATIC = "static_exit"


def static_rows(plan, method: str, seed: int, costs: dict, metric: str) -> pd.DataFrame:
    """The truncated-exit points of a multi-exit model: every sample answers at exit k, for each k (from the logit
    cache; ``row`` numbers them from 1, since two rows may read the same block). Not ranked; the reference method's
    rows are the ELUE-style reference curve. Accuracy only: a metric other than accuracy leaves these rows out."""
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
        # the row as well as the block: DeeBERT/BERxiT's last off-ramp and the final classifier both read block L,
        # and are two points
        "policy_params": static_params(layers),
        "metric": metric, "metric_value": acc,
        "expected_macs_paper": cum["paper"], "expected_macs_full": cum["full"],
        "layer_speedup": [cache["num_layers"] / l for l in layers],
        "head_aware_speedup_paper": [costs["macs"]["paper"]["backbone"] / v for v in cum["paper"]],
        "head_aware_speedup_full": [costs["macs"]["full"]["backbone"] / v for v in cum["full"]],
        "avg_exit_layer": [float(l) for l in layers], "exit_histogram": [_json({str(l): n}) for l in layers]})


def store_format(path: str | Path) -> str:
    """A store's format from its file name: .parquet or .csv, anything else refused."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise fail(f"results store {path}: unknown format {suffix or '(no extension)'!r}",
                   "name it .parquet (the store; eebench writes a .csv mirror beside it) or .csv")
    return suffix


def write_store(df: pd.DataFrame, path: str | Path, csv: str | Path | None = None) -> None:
    """``df`` (checked against the schema first) to ``path`` in the format its extension names, with an optional CSV
    mirror; the files appear together or not at all."""
    check_schema(df, f"the store for {path}")
    df = df.astype({c: "string" for c in ("git_commit", "timm", "transformers", "fvcore") if c in df})
    outs = [(path, store_format(path))] + ([(csv, store_format(csv))] if csv else [])
    with atomic_paths([p for p, _ in outs]) as tmps:
        for tmp, (_, fmt) in zip(tmps, outs):
            with writing(tmp):
                if fmt == ".parquet":
                    df.to_parquet(tmp, index=False)
                else:
                    df.to_csv(tmp, index=False)


# a CSV cell that is empty (or, in a number column, one of these) is missing; text like "NA" stays text
NUMBER_NA = ["", "nan", "NaN", "NAN", "-nan", "NA", "N/A", "null", "None"]


def read_store(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    fmt = store_format(path)
    if not path.is_file():
        raise fail(f"results store {path} does not exist", "run snakemake (it writes results/<run>/store.parquet)")
    try:
        if fmt == ".parquet":
            df = pd.read_parquet(path)
        else:
            text = [*TEXT, *JSON_FIELDS, *PROVENANCE]
            df = pd.read_csv(path, dtype={c: "string" for c in text}, keep_default_na=False,
                             na_values={c: [""] if c in text else NUMBER_NA for c in COLUMNS})
    except Exception as err:
        raise fail(f"results store {path} is unreadable ({type(err).__name__})", "rewrite it with eebench") from err
    check_schema(df, f"results store {path}")
    return df


def _where(df: pd.DataFrame, i: int) -> str:
    row = df.iloc[i]
    return f"row {i} ({row.get('method')}, seed {row.get('seed')}, {row.get('policy')} {row.get('policy_params')})"


def _numbers(df: pd.DataFrame, col: str, name: str) -> np.ndarray:
    """A number column as floats; text or booleans in it are one error."""
    values = df[col]
    if pd.api.types.is_bool_dtype(values):
        raise fail(f"{name}: column {col!r} holds booleans, not numbers", REWRITE)
    if not pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero(numbers.isna() & values.notna())
        if len(bad):
            raise fail(f"{name}: column {col!r} holds {values.iloc[bad[0]]!r} in {_where(df, bad[0])}, not a number",
                       REWRITE)
        values = numbers
    return values.to_numpy(dtype=float, na_value=np.nan)


def check_schema(df: pd.DataFrame, name: str = "the store") -> None:
    """Every column of the schema with its type, finite numbers, parseable JSON fields, one row per key; the first
    violation is one error naming the column and row."""
    if not len(df):
        raise fail(f"{name} has no rows", "rank a store that holds results (eebench run-store writes one per run)")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise fail(f"{name} lacks column(s) {missing}", REWRITE)
    for col in [*TEXT, *PROVENANCE, *JSON_FIELDS]:
        for i, v in enumerate(df[col].tolist()):
            empty = v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
            if isinstance(v, str) or (empty and col in PROVENANCE):
                continue
            what = "is empty" if empty else f"holds {v!r} ({type(v).__name__}), not text"
            raise fail(f"{name}: {col} {what} in {_where(df, i)}", REWRITE)
    for col, kind in JSON_FIELDS.items():
        for i, v in enumerate(df[col].tolist()):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError as err:
                raise fail(f"{name}: {col} {v!r} in {_where(df, i)} is not JSON ({err.msg})", REWRITE) from err
            if not isinstance(parsed, kind):
                raise fail(f"{name}: {col} {v!r} in {_where(df, i)} is not a JSON "
                           f"{'object' if kind is dict else 'array'}", REWRITE)
    for col in [*INTEGER, *NUMBER]:
        values = _numbers(df, col, name)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            more = f" ({len(bad) - 1} more in that column)" if len(bad) > 1 else ""
            raise fail(f"{name}: {col} is {values[bad[0]]} in {_where(df, bad[0])}{more}", NON_FINITE_FIX)
        if col in INTEGER and (bad := np.flatnonzero(values != np.round(values))).size:
            raise fail(f"{name}: {col} is {values[bad[0]]} in {_where(df, bad[0])}, not a whole number", REWRITE)
        if col in SPEEDUPS and (bad := np.flatnonzero(values <= 0)).size:
            raise fail(f"{name}: {col} is {values[bad[0]]} in {_where(df, bad[0])}, not a positive speed-up",
                       NON_FINITE_FIX)
        if col in MACS and (bad := np.flatnonzero(values < 0)).size:
            raise fail(f"{name}: {col} is {values[bad[0]]} in {_where(df, bad[0])}, a negative MAC count",
                       NON_FINITE_FIX)
    dup = df.duplicated(subset=KEY, keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero(dup & (df[KEY] == df[KEY].iloc[i]).all(axis=1))[1])
        raise fail(f"{name}: rows {i} and {j} are the same operating point ({', '.join(KEY)} = "
                   f"{', '.join(str(df[k].iloc[i]) for k in KEY)})",
                   "keep one row per operating point: combine stores with eebench merge (the later row wins)")


def validate(df: pd.DataFrame, reference: pd.DataFrame | None = None, name: str = "the store") -> None:
    """The schema (``check_schema``), then: every row must share the reference's protocol (default: the store's first
    row); rows of one policy must share its sweep grid. The first difference is one error line naming the field."""
    check_schema(df, name)
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
