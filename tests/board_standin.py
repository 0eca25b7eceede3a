"""A minimal stand-in for the board API of issue 23 (``eebench.leaderboard.boards``, ``.samples``, ``.paired``), for
the tests of ``compare --board`` and ``reproduce`` while that API is not in the tree: the same names and the same
board folder layout (board.json, config.yaml, one folder per run with store.csv, samples.npz, leaderboard.csv), and
only what those commands use. ``install`` puts it in place of the real modules only where they are missing."""
from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

KEY = ["run", "method", "backbone", "dataset", "seed", "policy", "policy_params"]


def _canon(params: dict) -> str:
    out = {}
    for k, v in params.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            out[k] = str(v)
    return json.dumps(out, sort_keys=True)


def _key(run, method, seed, policy, params: dict) -> str:
    return json.dumps([str(run), str(method), int(seed), str(policy), _canon(params)])


@dataclass
class EntrySamples:
    correct: np.ndarray  # [N] bool
    executed: np.ndarray  # [N] the layer up to which the sample ran (what the layer speed-up averages)
    num_layers: int


class Samples:
    def __init__(self, entries: dict[str, EntrySamples]):
        self.entries = entries

    def entry(self, row) -> EntrySamples:
        return self.entries[_key(row["run"], row["method"], row["seed"], row["policy"],
                                 json.loads(row["policy_params"]))]


def run_samples(plan) -> Samples:
    from eebench.curves import logged_layers, sweep_points
    from eebench.evaluate import load_cache
    from eebench.policies import build_policy

    entries = {}
    for m in plan.methods:
        policy = plan.method(m)["policy"]
        if not plan.method(m)["exit_layers"]:
            continue
        for s in plan.seeds:
            cache = load_cache(plan.final_logits(m, s))
            logged = logged_layers(cache["row_layers"], cache["num_layers"],
                                   policy.get("exit_layer_convention", "correct"))
            for point in sweep_points(policy):
                d = build_policy(policy["name"], **{**policy.get("params", {}), **point}).decide(
                    cache["logits"], **cache.get("extra", {}))
                entries[_key(plan.run, m, s, policy["name"], point)] = EntrySamples(
                    (d.prediction == cache["labels"]).numpy(), logged[d.compute_index].numpy(), cache["num_layers"])
    return Samples(entries)


def write_samples(s: Samples, path) -> None:
    arrays = {}
    for i, (k, e) in enumerate(s.entries.items()):
        arrays[f"key{i}"] = np.array(k)
        arrays[f"correct{i}"] = np.packbits(e.correct)
        arrays[f"executed{i}"] = e.executed.astype(np.int16)
        arrays[f"layers{i}"] = np.array(e.num_layers)
        arrays[f"n{i}"] = np.array(len(e.correct))
    np.savez(path, count=np.array(len(s.entries)), **arrays)


def read_samples(path) -> Samples:
    with np.load(path, allow_pickle=False) as z:
        return Samples({str(z[f"key{i}"]): EntrySamples(
            np.unpackbits(z[f"correct{i}"])[:int(z[f"n{i}"])].astype(bool), z[f"executed{i}"].astype(float),
            int(z[f"layers{i}"])) for i in range(int(z["count"]))})


def paired_area(entry_points_a, entry_points_b, lo, hi, n_boot=1000, seed=0) -> dict:
    from eebench.leaderboard import scores

    n = len(entry_points_a[0].correct)
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1 / n), size=n_boot)])

    def areas(points):
        c = np.stack([p.correct for p in points]).astype(float)
        e = np.stack([p.executed for p in points]).astype(float)
        acc, speed = weights @ c.T / n, points[0].num_layers / (weights @ e.T / n)
        return np.array([scores.area(scores.envelope(speed[b], acc[b]), lo, hi) for b in range(len(weights))])

    d = areas(entry_points_a) - areas(entry_points_b)
    low, high = np.percentile(d[1:], [2.5, 97.5])
    return {"diff": float(d[0]), "ci_low": float(low), "ci_high": float(high), "significant": not low <= 0 <= high}


@dataclass
class Board:
    name: str
    root: Path
    config: dict
    config_file: str
    cells: dict

    def store(self, run=None) -> pd.DataFrame:
        from eebench.leaderboard.store import read_store

        runs = [run] if run else list(self.cells)
        return pd.concat([read_store(self.cells[r] / "store.csv") for r in runs], ignore_index=True)

    def samples(self, run) -> Samples:
        return read_samples(self.cells[run] / "samples.npz")


def load_board(name_or_dir: str) -> Board:
    from eebench.errors import fail

    root = Path(name_or_dir)
    if not (root / "board.json").is_file():
        raise fail(f"no board {name_or_dir!r}", "give a board folder")
    meta = json.loads((root / "board.json").read_text())
    return Board(meta["name"], root, meta["config"], meta["config_file"],
                 {r: root / c for r, c in meta["cells"].items()})


def build_board(name, configfile, results_root=".", out_dir=None) -> Path:
    from eebench.leaderboard.store import read_store, write_store
    from eebench.plan import Plan, expand_grid, load_config, read_config

    results_root = Path(results_root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(configfile, out / "config.yaml")
    cells = {}
    for run, cfg in expand_grid(load_config(configfile)).items():
        cell = out / run.split("/")[-1]
        cell.mkdir(parents=True, exist_ok=True)
        write_store(read_store(results_root / "results" / run / "store.parquet"), cell / "store.csv")
        shutil.copy(results_root / "reports" / run / "leaderboard.csv", cell / "leaderboard.csv")
        import os

        here = Path.cwd()
        os.chdir(results_root)
        try:
            write_samples(run_samples(Plan(cfg)), cell / "samples.npz")
        finally:
            os.chdir(here)
        cells[run] = cell.name
    prov = {"cpu_model": "the test machine", "torch": __import__("torch").__version__}
    (out / "board.json").write_text(json.dumps({
        "name": name, "title": name, "config_file": str(configfile), "config": read_config(configfile),
        "cells": cells, "provenance": prov}))
    return out


def install(monkeypatch) -> bool:
    """The stand-in in place of ``eebench.leaderboard.boards``/``samples``/``paired`` where they are missing; True
    where it was installed."""
    import importlib.util

    if importlib.util.find_spec("eebench.leaderboard.boards") is not None:
        return False
    import eebench.leaderboard as pkg

    me = sys.modules[__name__]
    for name in ("boards", "samples", "paired"):
        mod = types.ModuleType(f"eebench.leaderboard.{name}")
        mod.__dict__.update({k: getattr(me, k) for k in ("load_board", "build_board", "Board", "Samples",
                                                         "EntrySamples", "run_samples", "write_samples",
                                                         "read_samples", "paired_area")})
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
        monkeypatch.setattr(pkg, name, mod, raising=False)
    return True


def yaml_dump(obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False)
