"""``eebench compare --head NAME``: the run's config plus one method — the new head under a fixed protocol — and a
Snakemake run of the leaderboard target. The backbone checkpoint, exit positions, sweep grid, MAC convention and seeds
come from the config and the template recipe; every cached baseline result is reused (only the new jobs run)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ..errors import fail

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = "mlp_normal"  # exits after every block but the last, one joint stage, the confidence sweep (LGViT Table 3)


def policy_stanza(policy: str, extra_dirs) -> dict:
    """A policy with the sweep grid of the recipe that uses it (the protocol's grid, not a hand-picked one)."""
    from ..recipes import available, load_recipe

    for name in available(extra_dirs):
        pol = load_recipe(name, extra_dirs).get("policy") or {}
        if pol.get("name") == policy:
            return pol
    raise fail(f"no recipe uses policy {policy!r}", "pick a policy of a baseline recipe (see `eebench list methods`)")


def comparison_config(raw: dict, head: str, scheme: str | None, policy: str | None, plugins: list[str]) -> dict:
    from ..recipes import available

    cfg = dict(raw)
    extra = cfg.get("extra_recipe_dirs") or []
    builtin = head in available(extra)
    if builtin or head in (raw.get("methods") or {}):
        what = "a built-in method" if builtin else "a method of this config"
        raise fail(f"--head {head!r} is {what}: the comparison would run that recipe, not your head",
                   f"give your head another name (e.g. my_{head}) in its @register_head and in --head")
    cfg["plugins"] = list(dict.fromkeys([*(cfg.get("plugins") or []), *plugins]))
    method = {"recipe": TEMPLATE, "heads": {"type": head}, "title": head}
    if scheme:
        method["scheme"] = scheme
    if policy:
        method["policy"] = policy_stanza(policy, extra)
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


def compare(head: str, configfile: str, scheme: str | None = None, policy: str | None = None,
            plugins: list[str] | None = None, profile: str | None = None, cores: str = "all",
            snakemake_args: list[str] | None = None) -> int:
    from ..io import write_text
    from ..names import check_name, check_run_name
    from ..plan import Plan, expand_grid, load_config, read_config

    check_name(head, "--head")  # before anything is written: the name becomes a path
    raw = read_config(configfile)
    cfg = comparison_config(raw, head, scheme, policy, plugins or [])
    run = check_run_name(str(raw.get("run", "run")))
    out = Path("results") / run.replace("/", "_") / "compare" / f"{head}.yaml"
    write_text(out, yaml.safe_dump(cfg, sort_keys=False))
    plans = [Plan(c) for c in expand_grid(load_config(out)).values()]  # plans now: a bad head or option fails here
    from ..heads import HEADS

    for p in plans:
        for h in p.method(head)["heads"]:
            HEADS.get(h["type"])  # an unknown head (no --plugin, no entry point) fails before any job starts
    for p in plans:
        m = p.method(head)
        print(f"compare {head} in run {p.run}: backbone {p.config['backbone']['name']} "
              f"(checkpoint {p.config['backbone'].get('pretrained', True)}), exits {m['exit_layers']}, stages "
              f"{[s['name'] for s in m['stages']]}, policy {m['policy']['name']} sweep {m['policy'].get('sweep')}, "
              f"MACs {p.config['report']['macs_convention']}, seeds {p.seeds}; config {out}", flush=True)
    targets = [f"reports/{p.run}/leaderboard.{e}" for p in plans for e in ("md", "csv", "html")]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *targets]
    cmd += ["--profile", profile] if profile else ["--cores", str(cores)]
    extra_args = list(snakemake_args or [])
    if extra_args[:1] == ["--"]:  # the documented `eebench compare … -- <snakemake args>`: the separator is ours
        extra_args = extra_args[1:]
    cmd += [*extra_args, "--configfile", str(out)]  # last: --configfile takes every word after it
    return subprocess.call(cmd)
