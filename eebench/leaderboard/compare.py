"""``eebench compare --head NAME``: a new exit head under a fixed protocol, trained by Snakemake, ranked beside the
methods it is compared with.

Two ways. ``--configfile C`` adds the head to C's run as one more method: every cached result of the run is reused
(the head trains in shares of its own, ``eebench.shares``). ``--board B`` compares it with a board's committed results
(``leaderboards/<B>/``): the board's config fixes the protocol (backbone and checkpoint, data, exits, seeds, sweep,
MAC convention) and a run of its own trains only the head (``<board run>-vs-<head>``, so a run of the board itself is
never touched); its store is then validated against the board's, merged with it and ranked (``eebench.leaderboard
.versus``).

Protocols. ``joint`` is ``mlp_normal``'s: exits after every block but the last, heads fine-tuned together with the
backbone from the pretrained weights. ``frozen`` trains the heads alone on the backbone the run fine-tuned
(``backbone:finetune``, held frozen and without dropout), as DeeBERT's stage 2 trains its off-ramps; its block
outputs are computed once and cached (``eebench.training.features``). Against a board, whose files hold no
checkpoints, the fine-tuned backbone is the one a run of the board trained (``results/<board run>/train/``) when its
job spec is the board's, else one trained once with the board's backbone spec in a run of its own
(``<board run>-backbone``) and reused by every later comparison (``eebench.leaderboard.frozen``)."""
from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import yaml

from ..errors import fail
from .derive import derived_config, only_cells, snakemake_command  # noqa: F401  (re-exported: the comparison API)

TEMPLATE = "mlp_normal"  # exits after every block but the last, one joint stage, the confidence sweep (LGViT Table 3)
PROTOCOLS = ("joint", "frozen")
# the template's one stage, made a heads-only stage on the fine-tuned backbone (DeeBERT's stage 2 without its
# optimiser-only freezing, so that no gradient reaches the backbone and its block outputs can be cached)
FROZEN_STAGE = {"init": "backbone:finetune", "train": "heads", "frozen_backbone_mode": "eval", "feature_cache": True}


def policy_stanza(policy: str, extra_dirs) -> dict:
    """A policy with the sweep grid of the recipe that uses it (the protocol's grid, not a hand-picked one)."""
    from ..recipes import available, load_recipe

    for name in available(extra_dirs):
        pol = load_recipe(name, extra_dirs).get("policy") or {}
        if pol.get("name") == policy:
            return pol
    raise fail(f"no recipe uses policy {policy!r}", "pick a policy of a baseline recipe (see `eebench list methods`)")


def head_method(head: str, scheme: str | None, policy: str | None, extra_dirs, protocol: str = "joint") -> dict:
    """The method entry of the compared head: the template recipe with the head at every exit."""
    if protocol not in PROTOCOLS:
        raise fail(f"unknown protocol {protocol!r}", f"use one of {', '.join(PROTOCOLS)}")
    method = {"recipe": TEMPLATE, "heads": {"type": head}, "title": head}
    if scheme:
        if protocol == "frozen":
            raise fail(f"--scheme {scheme} with --protocol frozen: the frozen protocol trains the heads in one stage "
                       "on the fine-tuned backbone", "leave out --scheme, or use --protocol joint")
        method["scheme"] = scheme
    if policy:
        method["policy"] = policy_stanza(policy, extra_dirs)
    if protocol == "frozen":
        method["stages"] = {"train": dict(FROZEN_STAGE)}
        method["title"] = f"{head} (frozen)"
    return method


def check_head_name(head: str, raw: dict, extra_dirs) -> None:
    from ..recipes import available

    builtin = head in available(extra_dirs)
    if builtin or head in (raw.get("methods") or {}):
        what = "a built-in method" if builtin else "a method of this config"
        raise fail(f"--head {head!r} is {what}: the comparison would run that recipe, not your head",
                   f"give your head another name (e.g. my_{head}) in its @register_head and in --head")


def comparison_config(raw: dict, head: str, scheme: str | None, policy: str | None, plugins: list[str],
                      protocol: str = "joint") -> dict:
    """``raw`` plus the head as one more method (``compare --configfile``)."""
    cfg = dict(raw)
    extra = cfg.get("extra_recipe_dirs") or []
    check_head_name(head, raw, extra)
    cfg["plugins"] = list(dict.fromkeys([*(cfg.get("plugins") or []), *plugins]))
    method = head_method(head, scheme, policy, extra, protocol)
    cfg["methods"] = {**(cfg.get("methods") or {}), head: method}
    for cell in cfg.get("grid") or []:
        if "methods" in cell:
            cell["methods"] = {**cell["methods"], head: method}
    # the head trains in shares of its own (eebench.shares), so the config's training.jobs shares, and with them
    # every cached baseline stage, stay as they were
    training = dict(cfg.get("training") or {})
    training["own_shares"] = list(dict.fromkeys([*(training.get("own_shares") or []), head]))
    cfg["training"] = training
    lb = dict(cfg.get("leaderboard") or {})
    lb["highlight"] = list(dict.fromkeys([*(lb.get("highlight") or []), head]))
    cfg["leaderboard"] = lb
    return cfg


def safe_part(name: str) -> str:
    """A head or method name as part of a run name (run names allow no '+')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def describe(plan, head: str, protocol: str, out: Path) -> str:
    m = plan.method(head)
    how = "the heads fine-tuned with the backbone"
    if protocol == "frozen":
        ref = plan.init_stage(head, m["stages"][0]["name"])
        how = f"the heads alone, on the fine-tuned backbone {plan.checkpoint_of(ref, '<s>')} held frozen"
    return (f"compare {head} in run {plan.run}: backbone {plan.config['backbone']['name']} (checkpoint "
            f"{plan.config['backbone'].get('pretrained', True)}), exits {m['exit_layers']}, stages "
            f"{[s['name'] for s in m['stages']]}, policy {m['policy']['name']} sweep {m['policy'].get('sweep')}, "
            f"MACs {plan.config['report']['macs_convention']}, seeds {plan.seeds}, protocol {protocol} ({how}), "
            f"{plan.config['training'].get('threads', 1)} thread(s) per training job; "
            f"config {out}")


def load_plans(path: Path, head: str) -> list:
    """The plans of a written comparison config: a bad head or option fails here, before any job starts."""
    from ..plan import read_config

    return plans_of(read_config(path), head)


def plans_of(config: dict, head: str) -> list:
    from ..heads import HEADS
    from ..plan import Plan, expand_grid, validate_config

    plans = [Plan(c) for c in expand_grid(validate_config(copy.deepcopy(config))).values()]
    for p in plans:
        for h in p.method(head)["heads"]:
            HEADS.get(h["type"])  # an unknown head (no --plugin, no entry point) fails before any job starts
    return plans


def compare(head: str, configfile: str, scheme: str | None = None, policy: str | None = None,
            plugins: list[str] | None = None, profile: str | None = None, cores: str = "all",
            snakemake_args: list[str] | None = None, protocol: str = "joint") -> int:
    from ..io import write_text
    from ..names import check_name, check_run_name
    from ..plan import read_config

    check_name(head, "--head")  # before anything is written: the name becomes a path
    raw = read_config(configfile)
    cfg = comparison_config(raw, head, scheme, policy, plugins or [], protocol)
    run = check_run_name(str(raw.get("run", "run")))
    out = Path("results") / run.replace("/", "_") / "compare" / f"{head}.yaml"
    write_text(out, yaml.safe_dump(cfg, sort_keys=False))
    plans = load_plans(out, head)
    for p in plans:
        print(describe(p, head, protocol, out), flush=True)
    targets = [f"reports/{p.run}/leaderboard.{e}" for p in plans for e in ("md", "csv", "html")]
    return subprocess.call(snakemake_command(targets, out, profile, cores, snakemake_args))


def board_cells(board, task: str | None) -> dict[str, str]:
    """Board run → the cell name a derived grid config gives it (None for a board of one run); ``task`` keeps one."""
    from ..plan import expand_grid

    runs = list(expand_grid(copy.deepcopy(board.config)))
    top = board.config["run"]
    cells = {r: (r.split("/", 1)[1] if board.config.get("grid") else None) for r in runs}
    if task is not None:
        if not board.config.get("grid"):
            raise fail(f"--task {task}: board {board.name!r} is one run ({top}), not a grid of tasks",
                       "leave out --task")
        if task not in cells.values():
            raise fail(f"board {board.name!r} has no task {task!r}",
                       f"choose one of: {', '.join(c for c in cells.values() if c)}")
        cells = {r: c for r, c in cells.items() if c == task}
    return cells


def compare_board(head: str, board_name: str, protocol: str = "joint", scheme: str | None = None,
                  policy: str | None = None, plugins: list[str] | None = None, profile: str | None = None,
                  cores: str = "all", snakemake_args: list[str] | None = None, task: str | None = None) -> int:
    from ..io import write_text
    from ..names import check_name
    from .boards import load_board
    from .frozen import frozen_backbones
    from .versus import rank_against_board

    check_name(head, "--head")
    board = load_board(board_name)
    extra = board.config.get("extra_recipe_dirs") or []
    check_head_name(head, board.config, extra)
    for run in board.cells:
        if head in set(board.store(run)["method"]):
            raise fail(f"--head {head!r} is an entry of board {board.name!r}", "give your head another name")
    cells = board_cells(board, task)
    method = head_method(head, scheme, policy, extra, protocol)
    suffix = "" if protocol == "joint" else f"-{protocol}"
    run = f"{board.config['run']}-vs-{safe_part(head)}{suffix}"
    cfg = derived_config(only_cells(board.config, cells), run, {head: method}, plugins)
    cfg["leaderboard"] = {**(cfg.get("leaderboard") or {}), "highlight": [head]}
    chains = sum(len(p.seeds) for p in plans_of(cfg, head))  # a bad head or option fails before anything trains
    cfg["training"] = {**cfg["training"],
                       "threads": job_threads(cores, profile, cfg["training"].get("threads", 1), chains)}
    if protocol == "frozen":
        external = frozen_backbones(board, cells, profile, cores)  # board run → the run holding its backbone
        _set_external(cfg, cells, external)
    out = Path("results") / run / "compare.yaml"
    write_text(out, yaml.safe_dump(cfg, sort_keys=False))
    plans = load_plans(out, head)
    for p in plans:
        print(describe(p, head, protocol, out), flush=True)
    from ..plan import store_path

    rc = subprocess.call(snakemake_command([store_path(p.run) for p in plans], out, profile, cores, snakemake_args))
    if rc:
        return rc
    if not all(Path(store_path(p.run)).is_file() for p in plans):  # e.g. `-- -n`: nothing trained, nothing ranked
        print("no store was written (a dry run?): nothing ranked", flush=True)
        return 0
    board_runs = {(f"{run}/{c}" if c else run): r for r, c in cells.items()}
    for p in plans:
        rank_against_board(board, board_runs[p.run], p, head, protocol)
    return 0


def job_threads(cores: str, profile: str | None, board_threads: int, chains: int = 1) -> int:
    """Threads of each of the comparison's training jobs. A board's config sets few threads per job so that its many
    jobs run side by side; a comparison trains one head: ``chains`` jobs at once (one per task and seed, its stages in
    sequence), so on this machine they share the cores Snakemake is given (the thread count is no part of the
    protocol: it changes floating-point sums, not what is trained). Under a cluster profile the board's count stays,
    as the profile sizes each job's cores from it."""
    from ..inference.latency import available_cores

    if profile:
        return int(board_threads)
    if str(cores) == "all":
        total = available_cores()
    elif str(cores).isdigit() and int(cores) >= 1:
        total = int(cores)
    else:
        raise fail(f"--cores {cores!r} is not a number of cores", "give --cores a count such as 2, or all")
    return max(int(board_threads), total // max(1, chains))


def _set_external(cfg: dict, cells: dict[str, str], external: dict[str, str]) -> None:
    """``external_stages`` of each run of the comparison: the backbone's fine-tune read from ``external[board run]``
    (its own run name, or a grid cell's ``<run>/<cell>``)."""
    if not cfg.get("grid"):
        (board_run,) = cells
        cfg["external_stages"] = {"backbone:finetune": external[board_run]}
        return
    by_cell = {c: external[r] for r, c in cells.items()}
    for cell in cfg["grid"]:
        cell["external_stages"] = {"backbone:finetune": by_cell[cell["name"]]}
