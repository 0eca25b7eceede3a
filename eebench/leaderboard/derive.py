"""Runs derived from a config: the comparison and reproduction runs that ``compare``, ``compare --board``, the frozen
protocol's backbone and ``reproduce`` train under a board's protocol, and the Snakemake command line they all use.
Below compare.py and frozen.py, which both need it."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def derived_config(config: dict, run: str, methods: dict, plugins: list[str] | None = None,
                   carry: tuple[str, ...] = ()) -> dict:
    """A run of its own under ``config``'s protocol (the same data, backbone, training defaults, seeds, report and
    leaderboard settings) that lists only ``methods``: no ablations, no Table 5 timings, no shares named for methods
    it lacks. What those methods start or distil from (DeeBERT's fine-tuned backbone, COST-EFF's teacher) keeps its
    original entry, deep-merged with its ``method_overrides`` per grid cell, as ``method_overrides`` of the new run,
    so that its job spec is the original run's; nothing else is kept (a plan refuses overrides of a method it does
    not train). ``carry``: methods listed with their original entries, per grid cell the same way (``eebench
    reproduce`` re-trains a board entry exactly as the board did)."""
    from ..plan import Plan, expand_grid, validate_config
    from ..recipes import deep_merge

    original = list(expand_grid(validate_config(copy.deepcopy(config))).values())

    def entry(orig: dict, name: str) -> dict:
        return deep_merge((orig.get("methods") or {}).get(name) or {},
                          (orig.get("method_overrides") or {}).get(name) or {})

    def listed(orig: dict) -> dict:
        return {**copy.deepcopy(methods), **{n: entry(orig, n) for n in carry}}

    cfg = copy.deepcopy(config)
    for key in ("ablations", "latency", "method_overrides"):
        cfg.pop(key, None)
    cfg["run"] = run
    cfg["methods"] = listed(original[0])
    if plugins:
        cfg["plugins"] = list(dict.fromkeys([*(cfg.get("plugins") or []), *plugins]))
    training = dict(cfg.get("training") or {})
    training.pop("own_shares", None)
    cfg["training"] = training
    cells = cfg.get("grid") or []
    for cell, orig in zip(cells, original):
        for key in ("ablations", "latency", "method_overrides"):
            cell.pop(key, None)
        cell["methods"] = listed(orig)
    for i, (probe, orig) in enumerate(zip(expand_grid(validate_config(copy.deepcopy(cfg))).values(), original)):
        names = list(listed(orig))
        keep = {d: entry(orig, d) for d in sorted(_closure(Plan(probe), names) - set(names))}
        if keep:
            (cells[i] if cells else cfg)["method_overrides"] = keep
    return cfg


def _closure(plan, names: list[str]) -> set[str]:
    """The methods whose stages ``names`` start or distil from, themselves included."""
    from ..shares import reachable

    return reachable(names, lambda m: [ref.partition(":")[0] for st in plan.method(m)["stages"]
                                       for ref in (st.get("init") or "", st.get("teacher") or "") if ":" in ref])


def snakemake_command(targets: list[str], configfile: str | Path, profile: str | None, cores: str,
                      snakemake_args: list[str] | None) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *targets]
    cmd += ["--profile", profile] if profile else ["--cores", str(cores)]
    extra_args = list(snakemake_args or [])
    if extra_args[:1] == ["--"]:  # the documented `eebench compare … -- <snakemake args>`: the separator is ours
        extra_args = extra_args[1:]
    return cmd + [*extra_args, "--configfile", str(configfile)]  # last: --configfile takes every word after it


def only_cells(config: dict, cells: dict[str, str | None]) -> dict:
    """A copy of a grid config reduced to the chosen cells (a config of one run: a copy)."""
    config = copy.deepcopy(config)
    if config.get("grid"):
        config["grid"] = [c for c in config["grid"] if c["name"] in set(cells.values())]
    return config
