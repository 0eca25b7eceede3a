"""Shares: a small run's training stages trained a few to a process (``training.jobs``, ``ablations.jobs``), and the
Snakemake rule of each share.

An embedded-size stage trains in seconds, so one process per stage would spend a large part of the run importing
torch and transformers; a share pays that startup once. The cost: a share is one Snakemake job, and Snakemake reruns a
job, deleting all of its outputs first, as soon as its params change. A share's params hold the spec of every stage
in it, so a share whose members change retrains every stage in it, unchanged ones included.

Shares are balanced by epochs over the methods they hold, so adding one method reshuffles them all. ``eebench compare``
adds a method to a finished run; before, that retrained every baseline stage (config/default.yaml: all 22 main-method
jobs, 11 stages × 2 seeds) only because the shares around them had changed. The ways out that were weighed:

- a share that skips a stage whose checkpoint already holds the same spec: Snakemake has deleted that checkpoint
  before the share starts, so nothing is left to skip;
- share params that leave the members out (e.g. specs read from a file): editing a method's spec would then no longer
  retrain it;
- a share assignment kept from run to run in a state file: the DAG would depend on a file that ``snakemake -n``
  writes, not on the config alone;
- a stable key per method (a hash modulo the share count): a new method still joins, and so reruns, an existing share.

What holds instead: the methods named in ``training.own_shares`` (``eebench compare`` names its head there) train in
shares of their own, ``methods-<name>-<k>``, holding the stages only they need. The other methods' shares are those of
the config without them, member for member, so their params, and so their jobs, are unchanged: no baseline stage
trains again. A second compared head gets shares of its own too, so the first one's do not change either. Editing a
method's own spec still changes its share's params, which retrains that share. A method added to the config's
``methods:`` by hand joins the balanced shares, which then rerun; naming it in ``training.own_shares`` keeps them.
"""
from __future__ import annotations

from typing import Any

from .paths import logits_path, train_path

Job = tuple[str, int, str]  # (method, seed, stage)


def train_groups(plan) -> dict[str, list[Job]]:
    """Share name → its (method, seed, stage) jobs, in training order: ``ablations.jobs: N`` shares of the ablation
    variants (``ablations-1`` …), ``training.jobs: N`` shares of the main methods (``methods-1`` …), and N shares of
    each method of ``training.own_shares`` (``methods-<name>-1`` …). Each share trains its jobs one after another; a
    chain of stages (a stage that starts from, or distils from, another's checkpoint) stays in one share, in stage
    order, unless the stage it starts from is another set of shares' (the share then waits for that one's checkpoint,
    its input); shares are balanced by epochs. Without these keys (paper-scale runs, where a stage takes hours) every
    stage is its own job; a run on several devices per job (DDP) never groups its main methods."""
    config = plan.config
    abl = config.get("ablations") or {}
    main = {plan.canonical[m] for m, spec in plan.all_methods.items() if "variant_of" not in spec}  # + deps
    variants = sorted({plan.canonical[v] for v, spec in plan.all_methods.items() if "variant_of" in spec} - main)
    groups = {}
    if plan.tables and abl.get("jobs"):
        groups.update(_shares(plan, "ablations", variants, int(abl["jobs"]), plan.ablation_seeds))
    jobs = config["training"].get("jobs")
    if jobs and plan.train_devices == 1:
        own = own_share_methods(plan, main)
        groups.update(_shares(plan, "methods", sorted(main - {m for names in own.values() for m in names}),
                              int(jobs), plan.seeds))
        for name, names in own.items():
            groups.update(_shares(plan, f"methods-{name}", sorted(names), int(jobs), plan.seeds))
    return groups


def own_share_methods(plan, main: set[str]) -> dict[str, set[str]]:
    """Each method of ``training.own_shares`` → the canonical methods whose stages only it needs: itself (unless its
    spec is another method's) and what it starts or distils from that nothing else uses. A stage that another method
    needs too stays in that method's shares, and a method named earlier keeps what it shares with a later one, so
    naming one more method never moves a stage out of a share."""
    own = list(dict.fromkeys(plan.config["training"].get("own_shares") or []))
    taken = _needed(plan, [m for m in plan.methods if m not in own])
    out = {}
    for name in own:
        mine = (_needed(plan, [name]) & main) - taken
        taken |= mine
        out[name] = mine
    return out


def reachable(start, neighbours) -> set:
    """Everything reachable from ``start`` through ``neighbours(node)``, the start included (the stages a method
    starts or distils from, transitively)."""
    seen, todo = set(), list(start)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += neighbours(m)
    return seen


def _needed(plan, names: list[str]) -> set[str]:
    """Canonical methods whose jobs the given methods' stages need: the owners of their stages (a stage shared by
    identical specs is trained as its first method's) and, recursively, of the stages those start or distil from."""
    def refs(m: str) -> list[str]:
        found = [r for st in plan.method(m)["stages"]
                 for r in (plan.stage_owner(m, st["name"]), plan.init_stage(m, st["name"]),
                           plan.teacher_stage(m, st["name"]))]
        return [r[0] for r in found if r and r not in plan.external]  # another run's: nothing to train

    return reachable([plan.canonical[n] for n in names], refs)


def _shares(plan, prefix: str, names: list[str], count: int, seeds: list[int]) -> dict[str, list[Job]]:
    """``names`` (canonical methods) × ``seeds`` split into ``count`` shares named ``<prefix>-<k>``."""
    # a method whose stage starts from another one's stage goes in that method's share (per seed)
    root = {}
    for name in names:
        dep, seen = name, set()
        while dep not in seen:
            seen.add(dep)
            inits = [pair for st in plan.method(dep)["stages"]  # init and teacher stages alike
                     for pair in (plan.init_stage(dep, st["name"]), plan.teacher_stage(dep, st["name"]))]
            outside = [plan.canonical[i[0]] for i in inits if i and plan.canonical[i[0]] != dep]
            nxt = next((o for o in outside if o in names), None)
            if nxt is None:
                break
            dep = nxt
        root.setdefault(dep, []).append((len(seen), name))  # depth in its chain: shallower trains first

    def own(n):  # a stage another method's job trains (Plan.stage_owner: two-stage ⊂ progressive) is not retrained,
        # nor one read from another run (Plan.external)
        return [st for st in plan.method(n)["stages"] if plan.trains(n, st["name"])]

    cost = {r: sum(st["epochs"] for _, n in members for st in own(n)) for r, members in root.items()}
    shares: list[list[Job]] = [[] for _ in range(count)]
    load = [0] * count
    for r, seed in sorted(((r, s) for r in root for s in seeds), key=lambda rs: (-cost[rs[0]], rs)):
        i = load.index(min(load))
        shares[i] += [(n, seed, st["name"]) for _, n in sorted(root[r]) for st in own(n)]
        load[i] += cost[r]
    return {f"{prefix}-{i + 1}": share for i, share in enumerate(shares) if share}


def stage_log_path(run: str, method: str, seed: int, stage: str) -> str:
    return f"results/{run}/logs/train/{method}/seed{seed}/{stage}.log"


def epochs_csv_path(run: str, method: str, seed: int, stage: str) -> str:
    return f"results/{run}/logs/train/{method}/seed{seed}/{stage}.epochs.csv"


def share_item(plan, method: str, seed: int, stage: str) -> dict[str, Any]:
    """One stage of a share as ``eebench train-group`` reads it: its job spec and its paths."""
    run = plan.run
    prev, teacher = plan.init_stage(method, stage), plan.teacher_stage(method, stage)
    return {"job": plan.train_job(method, seed, stage), "out": train_path(run, method, seed, stage),
            "init": plan.checkpoint_of(prev, seed) if prev else None,
            "teacher": plan.checkpoint_of(teacher, seed) if teacher else None,
            "logits": logits_path(run, method, seed, stage), "log": stage_log_path(run, method, seed, stage),
            "epochs_csv": epochs_csv_path(run, method, seed, stage),
            "tensorboard": f"results/{run}/logs/tensorboard/{method}/seed{seed}/{stage}"}


def share_rule(plan, share: str, jobs: list[Job]) -> dict[str, Any]:
    """What the share's Snakemake rule (workflow/rules/train.smk) is made of; its input, params and shell command
    decide when Snakemake reruns it. ``params`` are passed to the command as they are (``spec`` as JSON)."""
    items = [share_item(plan, *j) for j in jobs]
    made = {i["out"] for i in items}
    threads = plan.config["training"].get("threads", 1) * plan.train_devices
    return {
        "input": sorted({i[k] for i in items for k in ("init", "teacher") if i[k] and i[k] not in made}),
        "output": [i["out"] for i in items] + [i["logits"] for i in items],
        "params": {"spec": {"jobs": items, "eval_batch_size": plan.config["training"]["eval_batch_size"]},
                   "nproc": plan.train_devices},
        "log": [f"results/{plan.run}/logs/train/{share}.log"] + [i[k] for i in items for k in ("log", "epochs_csv")],
        "threads": threads,
        # the shares are the run's longest jobs: start them first, longest (most epochs) first, so that the cores
        # finish together instead of a share starting last and running alone
        "priority": 10 + sum(plan.stage(m, st)["epochs"] for m, _, st in jobs),
    }
