"""Reference boards: a config plus its committed results under ``leaderboards/<board>/``, so a new head is ranked
against fixed entries without retraining them (ELUE's fixed published entries, timm's results CSVs in the
repository).

``leaderboards/boards.yaml`` names each board's config. ``eebench board make NAME`` runs the config's DAG and builds
the board from it; ``eebench board build NAME`` builds it from a run that has already finished. A board holds, per
run of its config (one cell; a grid config has one per task), the results store, the per-sample records of every
operating point (``samples``), the rendered leaderboard, Table 1 (and Table 5 where the run times one), the figures
as PNG, and an ``entries.csv`` of the numbers the site shows; beside them ``board.json`` (the config as run, its hash,
provenance: commit, libraries, CPU, precision, wall time) and a copy of the config file. No checkpoints and no logit
caches: a board stays a few MB.
"""
from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..errors import fail
from ..io import atomic_dir, copy_file, read_json, write_json, write_text

REPO = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO / "leaderboards"
REGISTRY = "boards.yaml"
BOARD_JSON = "board.json"
FORMAT = 1
SIZE_BUDGET = 8 * 2 ** 20  # "a few MB": a board above it is reported when built
# what a cell keeps of reports/<run>/: tables as markdown and CSV, figures as PNG (no LaTeX, no PDF), the page
KEEP = (".md", ".csv", ".png")


def registry(boards_dir: Path | None = None) -> dict[str, dict]:
    path = (boards_dir or BOARDS_DIR) / REGISTRY
    try:
        reg = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as err:
        raise fail(f"the board registry {path} does not exist", "restore it from the repository") from err
    except yaml.YAMLError as err:
        raise fail(f"the board registry {path} is not valid YAML ({str(err).splitlines()[0]})", "fix it") from err
    if not isinstance(reg, dict) or not all(isinstance(v, dict) and "config" in v for v in reg.values()):
        raise fail(f"the board registry {path} is not a mapping of board name → {{config: …}}", "fix it")
    return reg


def board_names() -> list[str]:
    return list(registry())


@dataclass(eq=False)
class Board:
    """A built board: ``meta`` is its board.json."""

    name: str
    root: Path
    meta: dict

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def config_file(self) -> str:
        return self.meta["config_file"]

    @property
    def title(self) -> str:
        return self.meta.get("title") or self.name

    @property
    def provenance(self) -> dict:
        return self.meta.get("provenance") or {}

    @property
    def cells(self) -> dict[str, Path]:
        return {run: self.root / rel for run, rel in self.meta["cells"].items()}

    def cell(self, run: str) -> Path:
        if run not in self.meta["cells"]:
            raise fail(f"board {self.name} has no run {run!r}", f"its runs: {', '.join(self.meta['cells'])}")
        return self.cells[run]

    def store(self, run: str | None = None) -> pd.DataFrame:
        """One cell's store, or every cell's, concatenated."""
        from .store import read_store

        runs = [run] if run is not None else list(self.meta["cells"])
        return pd.concat([read_store(self.cell(r) / "store.csv") for r in runs], ignore_index=True)

    def samples(self, run: str):
        from .samples import read_samples

        return read_samples(self.cell(run) / "samples.npz")

    def entries(self, run: str) -> pd.DataFrame:
        path = self.cell(run) / "entries.csv"
        if not path.is_file():
            raise fail(f"board {self.name}: {path} is missing", f"rebuild it (eebench board build {self.name})")
        return pd.read_csv(path)


def load_board(name_or_dir: str | Path) -> Board:
    """A registered board by name, or a board folder (one holding board.json)."""
    reg = registry()
    if str(name_or_dir) in reg:
        name, root = str(name_or_dir), BOARDS_DIR / str(name_or_dir)
        if not (root / BOARD_JSON).is_file():
            raise fail(f"board {name} is registered but not built ({root / BOARD_JSON} is missing)",
                       f"eebench board make {name} (or eebench board build {name} after its run)")
    else:
        root = Path(name_or_dir)
        if not (root / BOARD_JSON).is_file():
            raise fail(f"no board {str(name_or_dir)!r}: not a registered name, nor a folder holding {BOARD_JSON}",
                       f"registered boards: {', '.join(reg) or '(none)'}; list them with eebench board list")
        name = root.name
    meta = read_json(root / BOARD_JSON)
    if not isinstance(meta, dict) or not {"name", "cells", "config", "config_file"} <= set(meta) or \
            not isinstance(meta["cells"], dict):
        raise fail(f"{root / BOARD_JSON} is not a board description", f"rebuild it (eebench board build {name})")
    for run, rel in meta["cells"].items():
        cell = (root / str(rel)).resolve()
        if root.resolve() not in cell.parents or not cell.is_dir():
            raise fail(f"board {name}: run {run}'s folder {rel!r} is not a folder inside the board",
                       f"rebuild it (eebench board build {name})")
    return Board(name=str(meta["name"]), root=root, meta=meta)


def cell_name(run: str) -> str:
    """A run's folder in its board: a grid cell's name (``glue-minilm/cola`` → ``cola``), else the run's name."""
    return run.rsplit("/", 1)[-1]


def _configfile(name: str, configfile: str | Path | None) -> Path:
    if configfile is None:
        reg = registry()
        if name not in reg:
            raise fail(f"board {name!r} is not registered and no --configfile was given",
                       f"pass --configfile, or register it in {BOARDS_DIR / REGISTRY}")
        configfile = reg[name]["config"]
    path = Path(configfile)
    if not path.is_file() and not path.is_absolute() and (REPO / path).is_file():
        path = REPO / path  # the registry's paths are relative to the repository
    if not path.is_file():
        raise fail(f"config file {configfile} does not exist", "pass an existing config (see eebench board list)")
    return path


def required_files(plan) -> list[str]:
    """What a finished run has written that a board reads (relative to the run's working folder)."""
    from ..plan import costs_path, curve_path, latency_path, store_path

    run = plan.run
    out = [store_path(run)]
    for m in plan.methods:
        out.append(costs_path(run, plan.cost_canonical[m]))
        for s in plan.seeds:
            out += [plan.final_logits(m, s), curve_path(run, m, s)]
    out += [f"reports/{run}/{f}" for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "table1.md",
                                          "table1.csv", "fig1_tradeoff.png")]
    if plan.config.get("latency"):
        out += [latency_path(run), f"reports/{run}/table5.md", f"reports/{run}/table5.csv"]
    return list(dict.fromkeys(out))


def check_finished(plan, root: Path, configfile: Path, name: str) -> None:
    for rel in required_files(plan):
        if not (root / rel).is_file():
            raise fail(f"run {plan.run} is not finished: {root / rel} is missing",
                       f"run `snakemake --cores all --configfile {configfile}` in {root} first "
                       f"(or eebench board make {name})")


def build_board(name: str, configfile: str | Path | None = None, results_root: str | Path = ".",
                out_dir: str | Path | None = None) -> Board:
    """The board ``name`` from the finished run(s) of ``configfile`` (default: the registry's) under
    ``results_root``, written to ``out_dir`` (default ``leaderboards/<name>``) as one folder that replaces the
    previous one only once every file of it is written."""
    from ..names import check_name
    from ..plan import Plan, expand_grid, load_config
    from ..smoke import smoke_run_name
    from .entries import write_summary
    from .runinfo import board_provenance

    check_name(name, "board name")
    cfg_path = _configfile(name, configfile)
    root = Path(results_root)
    raw = cfg_path.read_bytes()
    config = load_config(cfg_path)
    plans = {run: Plan(cfg) for run, cfg in expand_grid(config).items()}
    for plan in plans.values():
        check_finished(plan, root, cfg_path, name)
    cells = {run: cell_name(run) for run in plans}
    if len(set(cells.values())) != len(cells):
        raise fail(f"config {cfg_path} has two runs whose cell names collide ({sorted(cells.values())})",
                   "give every grid cell its own name")
    entry = registry().get(name, {}) if (BOARDS_DIR / REGISTRY).is_file() else {}
    out = Path(out_dir) if out_dir is not None else BOARDS_DIR / name
    config_run = smoke_run_name(config["run"]) if config.get("smoke") else str(config["run"])
    with atomic_dir(out) as tmp:
        stores = {run: build_cell(plan, root, tmp / cells[run]) for run, plan in plans.items()}
        summary = write_summary(plans, tmp, cells)
        copy_file(cfg_path, tmp / "config.yaml")
        reports = root / "reports" / config_run
        if config.get("grid") and reports.is_dir():  # the grid's own tables (Table 1 across GLUE tasks)
            for f in sorted(reports.iterdir()):
                if f.is_file() and f.suffix in (".md", ".csv"):
                    copy_file(f, tmp / f.name)
        meta = {"format": FORMAT, "name": name, "title": entry.get("title") or name,
                "description": entry.get("description", ""), "config_file": _shown(cfg_path, entry.get("config")),
                "config_sha256": hashlib.sha256(raw).hexdigest(), "config": config, "cells": cells,
                "summary": summary, "provenance": board_provenance(config, plans, stores, root, config_run)}
        write_json(tmp / BOARD_JSON, meta)
        sizes = folder_sizes(tmp)
    total = sum(sizes.values())
    print(f"board {name}: {len(cells)} run(s) → {out} ({total / 2 ** 20:.2f} MB)")
    if total > SIZE_BUDGET:
        big = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
        print(f"board {name} is {total / 2 ** 20:.1f} MB, over the {SIZE_BUDGET / 2 ** 20:.0f} MB budget; largest: "
              + ", ".join(f"{k} {v / 2 ** 20:.2f} MB" for k, v in big))
    return load_board(out)


def _shown(path: Path, registered: str | None = None) -> str:
    """The config's path as the registry writes it (relative to the repository): the registry's own path where the
    run's file is byte for byte the registered config (a run in another checkout), else the path given."""
    if registered and (REPO / registered).is_file() and (REPO / registered).read_bytes() == path.read_bytes():
        return registered
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def folder_sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def build_cell(plan, root: Path, cell: Path) -> pd.DataFrame:
    """One run's folder: store, per-sample records, the run's tables and figures, the Pareto plot, entries.csv."""
    from ..plan import store_path
    from .entries import cell_entries
    from .samples import run_samples, write_samples
    from .store import key_text, read_store, validate, write_store

    store = read_store(root / store_path(plan.run))
    validate(store, name=f"results store {root / store_path(plan.run)}")
    samples = run_samples(plan, root)
    stored = {key_text(r) for _, r in store.iterrows()}
    if stored != set(samples.keys):
        extra = sorted(stored - set(samples.keys)) or sorted(set(samples.keys) - stored)
        raise fail(f"run {plan.run}: its store and its logit caches name different operating points (e.g. "
                   f"{extra[0]})", "the store is stale: rerun snakemake on this config, then build again")
    cell.mkdir(parents=True, exist_ok=True)
    write_store(store, cell / "store.csv")
    write_samples(samples, cell / "samples.npz")
    reports = root / "reports" / plan.run
    for f in sorted(reports.iterdir()):
        if f.is_file() and (f.suffix in KEEP or f.name == "leaderboard.html"):
            copy_file(f, cell / f.name)
    write_pareto(plan, store, cell / "pareto.png")
    lb = pd.read_csv(reports / "leaderboard.csv")
    write_text(cell / "entries.csv", cell_entries(plan, root, lb).to_csv(index=False))
    return store


def write_pareto(plan, store: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    from ..io import atomic_path
    from .board import leaderboard, options
    from .render import pareto_figure
    from .store import STATIC

    opts = {**options(plan.config), "bootstrap": 0}
    res = leaderboard(store, opts)
    res["means"].attrs["metric"] = store[store["policy"] != STATIC]["metric"].iloc[0]
    fig = pareto_figure(res, opts, dict(zip(res["board"]["method"], res["board"]["title"])))
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(fig)


def make_board(name: str, cores: str = "all", profile: str | None = None, snakemake_args: list[str] | None = None,
               configfile: str | Path | None = None) -> int:
    """Run the board's config through Snakemake here (what is cached is reused; nothing cached: from scratch), then
    build the board (the caller rewrites the site, which reads boards). Returns Snakemake's exit code (the board is
    built only on 0)."""
    from .derive import snakemake_command

    cfg_path = _configfile(name, configfile)
    cmd = snakemake_command([], cfg_path, profile, cores, snakemake_args)
    print("running: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc:
        return rc
    build_board(name, cfg_path, ".")
    return 0


def describe(name: str, entry: dict) -> str:
    built = (BOARDS_DIR / name / BOARD_JSON).is_file()
    when = ""
    if built:
        meta = read_json(BOARDS_DIR / name / BOARD_JSON)
        when = f" (built {meta.get('provenance', {}).get('built', {}).get('at', '?')}, {len(meta.get('cells', {}))} " \
               f"run(s))"
    return f"{name:14s} {entry['config']:28s} {'built' + when if built else 'not built'}"


__all__ = ["BOARDS_DIR", "Board", "board_names", "build_board", "load_board", "make_board", "registry"]
