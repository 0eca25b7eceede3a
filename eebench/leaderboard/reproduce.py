"""``eebench reproduce --board B --method M [--task T]``: re-train one board entry in a run of its own
(``<board run>-reproduce-<M>``, so a run of the board is never touched), exactly as the board's config trains it
(the entry's own settings, per grid cell; what it starts or distils from with the board's settings too), and print
its deltas against the board: the metric at full depth, the speed-up at the board's operating point, the area.

On the board's own machine and library versions the deltas are 0: every stage seeds its generators from the config
and trains in a fixed order. On another machine they are not: CPU kernels (AVX2 vs AVX-512, bf16 or not), thread
counts and library versions change the order of floating-point sums, and a training run amplifies those last bits.
So both machines are named."""
from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import fail
from .runinfo import FLAGS, cpu_info

def _cpu(cpu: dict) -> str:
    flags = cpu.get("flags")
    have = ", ".join(f for f in FLAGS if isinstance(flags, dict) and flags.get(f)) if isinstance(flags, dict) else None
    return f"{cpu.get('model') or '?'} ({have or 'none of ' + ', '.join(FLAGS)}; {cpu.get('logical_cpus')} logical CPUs)"


def machine_of(prov: dict) -> dict:
    """The lines naming a machine, from a board's provenance (``runinfo.board_provenance``) or this machine's in the
    same layout: CPU model and the flags that change kernels and precision, libraries, precision, commit."""
    libs = prov.get("libraries") or {}
    precision = prov.get("precision") or {}
    return {"CPU": _cpu(prov.get("cpu") or {}),
            "libraries": ", ".join(f"{k} {libs[k]}" for k in sorted(libs) if libs[k]),
            "precision": precision.get("effective dtype (store)") or precision.get("training.cpu_precision"),
            "threads per job": prov.get("threads"), "commit": prov.get("git_commit")}


def this_machine(config: dict, dtype: str | None) -> dict:
    from ..provenance import provenance

    prov = provenance()
    return machine_of({"cpu": cpu_info(), "libraries": {k: prov.get(k) for k in ("eebench", "python", "torch",
                                                                                  "transformers", "timm", "fvcore")},
                       "precision": {"effective dtype (store)": dtype},
                       "threads": (config.get("training") or {}).get("threads"), "git_commit": prov["git_commit"]})


def reproduce_config(board, method: str, cell: str | None) -> dict:
    from .compare import safe_part
    from .derive import derived_config, only_cells

    run = f"{board.config['run']}-reproduce-{safe_part(method)}"
    cells = {board.config["run"]: None} if cell is None else {f"{board.config['run']}/{cell}": cell}
    return derived_config(only_cells(board.config, cells), run, {}, carry=(method,))


def full_depth(points: pd.DataFrame) -> float:
    """The metric at the slowest point (every sample through the whole model): the method's own full depth, as the
    board's retention scores read it (``board.retention_metric``)."""
    return float(points.loc[points["layer_speedup"].idxmin(), "metric_value"])


def as_curve(points: pd.DataFrame) -> pd.DataFrame:
    """Store rows of one method → the per-seed curve layout ``report.summary`` picks operating points on."""
    params = [json.loads(p) for p in points["policy_params"]]
    curve = pd.DataFrame({f"param_{k}": [p.get(k) for p in params] for k in sorted({k for p in params for k in p})})
    metric = points["metric"].iloc[0]
    cols = ["layer_speedup", "expected_macs_paper", "expected_macs_full", "head_aware_speedup_paper",
            "head_aware_speedup_full", "avg_exit_layer"]
    curve = pd.concat([curve.reset_index(drop=True), points[cols].reset_index(drop=True)], axis=1)
    curve["accuracy"] = points["metric_value"].to_numpy() if metric == "accuracy" else np.nan
    if metric != "accuracy":
        curve["score"] = points["metric_value"].to_numpy()
        curve["metric"] = metric
    curve["policy"] = points["policy"].iloc[0]
    return curve


def entry_numbers(store: pd.DataFrame, method: str, config: dict) -> dict:
    """One entry's three numbers from a store: metric at full depth and area (means over seeds), speed-up at the
    board's operating point (on the seed-mean curve, as Table 1 picks it)."""
    from ..report.summary import mean_curve, operating_point
    from . import scores

    rows = store[(store["method"] == method) & (store["policy"] != "static_exit")]
    if rows.empty:
        raise fail(f"the store has no rows of {method!r}", "check the method name")
    lo, hi = config["report"].get("auc_speedup_range", [1.0, 3.0])
    seeds = sorted(rows["seed"].unique().tolist())
    full = [full_depth(rows[rows["seed"] == s]) for s in seeds]
    area = [scores.area(scores.envelope(g["layer_speedup"], g["metric_value"]), lo, hi)
            for _, g in rows.groupby("seed")]
    rule = config["report"].get("operating_point") or {"rule": "max_speedup_within_drop", "max_drop": 1.0}
    point = operating_point(mean_curve(as_curve(rows)), rule, method, rows["policy"].iloc[0])
    return {"metric": rows["metric"].iloc[0], "seeds": seeds, "full_depth": float(np.mean(full)),
            "speedup": None if point is None else float(point["layer_speedup"]), "area": float(np.mean(area)),
            "rule": rule}


def reproduce(board_name: str, method: str, task: str | None = None, profile: str | None = None,
              cores: str = "all", snakemake_args: list[str] | None = None) -> int:
    from ..io import write_text, write_texts
    from ..names import check_name
    from ..plan import Plan, expand_grid, store_path, validate_config
    from .boards import load_board
    from .compare import board_cells
    from .derive import snakemake_command
    from .store import read_store

    import yaml

    check_name(method, "--method")
    board = load_board(board_name)
    cells = board_cells(board, task)
    if len(cells) != 1:
        raise fail(f"board {board.name!r} is a grid of {len(cells)} tasks", "pick one with --task "
                   f"({', '.join(c for c in cells.values() if c)})")
    (board_run, cell), = cells.items()
    board_store = board.store(board_run)
    if method not in set(board_store["method"]):
        raise fail(f"board {board.name!r} ({board_run}) has no entry {method!r}",
                   f"choose one of: {', '.join(dict.fromkeys(board_store['method']))}")
    cfg = reproduce_config(board, method, cell)
    run = cfg["run"] + (f"/{cell}" if cell else "")
    path = Path("results") / cfg["run"] / "reproduce.yaml"
    write_text(path, yaml.safe_dump(cfg, sort_keys=False))
    plan = Plan(next(iter(expand_grid(validate_config(copy.deepcopy(cfg))).values())))
    print(f"reproduce {method} of board {board.name} ({board_run}) in run {run}: stages "
          f"{[s['name'] for s in plan.method(method)['stages']]}, seeds {plan.seeds}; config {path}", flush=True)
    rc = subprocess.call(snakemake_command([store_path(run)], path, profile, cores, snakemake_args))
    if rc or not Path(store_path(run)).is_file():
        return rc
    cell_cfg = expand_grid(validate_config(copy.deepcopy(board.config)))[board_run]
    theirs, ours = entry_numbers(board_store, method, cell_cfg), entry_numbers(read_store(store_path(run)), method,
                                                                                cell_cfg)

    mine = read_store(store_path(run))
    lines = delta_lines(method, theirs, ours, machine_of(board.provenance),
                        this_machine(cell_cfg, str(mine["dtype"].iloc[0])))
    print("\n".join(lines), flush=True)
    out = Path("reports") / run
    table = pd.DataFrame([{"quantity": q, "board": theirs[k], "here": ours[k],
                           "delta": None if theirs[k] is None or ours[k] is None else ours[k] - theirs[k]}
                          for q, k in (("metric at full depth", "full_depth"), ("speed-up at operating point", "speedup"),
                                       ("area", "area"))])
    write_texts({out / "reproduce.md": "\n".join(f"    {line}" for line in lines) + "\n",
                 out / "reproduce.csv": table.to_csv(index=False)})
    print(f"wrote {out}/reproduce.md, reproduce.csv; the run's store: {store_path(run)}", flush=True)
    return 0


def delta_lines(method: str, theirs: dict, ours: dict, board_m: dict, here_m: dict) -> list[str]:
    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    def delta(k, fmt):
        return "—" if theirs[k] is None or ours[k] is None else format(ours[k] - theirs[k], "+" + fmt)

    from ..report.summary import describe_rule

    metric = theirs["metric"]
    lines = [f"{method}: deltas against the board (here − board; seeds {ours['seeds']})",
             f"  {'':<34}{'board':>10}{'here':>10}{'delta':>11}",
             f"  {metric + ' at full depth':<34}{num(theirs['full_depth'], '.4f'):>10}"
             f"{num(ours['full_depth'], '.4f'):>10}{delta('full_depth', '.4f'):>11}",
             f"  {'layer speed-up at operating point':<34}{num(theirs['speedup'], '.3f'):>10}"
             f"{num(ours['speedup'], '.3f'):>10}{delta('speedup', '.3f'):>11}",
             f"  {'area over layer speed-up':<34}{num(theirs['area'], '.4f'):>10}{num(ours['area'], '.4f'):>10}"
             f"{delta('area', '.4f'):>11}",
             f"  operating point: {describe_rule(theirs['rule'])}",
             *(["  every number equals the board's, bit for bit"] if all(
                 theirs[k] == ours[k] for k in ("full_depth", "speedup", "area")) else []),
             "  board machine: " + "; ".join(f"{k} {v}" for k, v in board_m.items() if v not in (None, "")),
             "  this machine:  " + "; ".join(f"{k} {v}" for k, v in here_m.items() if v not in (None, "")),
             "  Bit-identity is not expected across machines: CPU kernels (vector width, native bf16), thread counts "
             "and library versions change the order of floating-point sums, and training amplifies those last "
             "bits; on the board's own machine and versions the deltas are 0."]
    return lines
