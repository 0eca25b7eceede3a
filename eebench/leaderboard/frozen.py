"""The fine-tuned backbone a frozen comparison trains its heads on.

A board ships no checkpoints. Its config's ``backbone`` method is the fine-tuned backbone (the stage
``backbone:finetune``, which DeeBERT's off-ramps also start from). Where the user has run the board, its checkpoint is
``results/<board run>/train/<owner>/seed<s>/finetune.pt``, and it serves when the job spec it was trained with is
the board's (read back from the checkpoint): the comparison then reads it in place (``external_stages``) and never
writes into that run. Otherwise it is trained once, with the board's spec, in a run of its own,
``<board run>-backbone``, by Snakemake (which caches it like any job), and every later frozen comparison against the
board reads it there."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

STAGE = ("backbone", "finetune")


def _spec_matches(path: str, job: dict) -> bool:
    """Whether the checkpoint at ``path`` was trained with exactly ``job``."""
    from ..errors import EEBenchError
    from ..io import load_torch

    if not Path(path).is_file():
        return False
    try:
        return load_torch(path).get("job") == job
    except EEBenchError:  # unreadable: not a checkpoint to train on
        return False


def trained(plan) -> bool:
    """Whether every seed's fine-tuned backbone of ``plan``'s run is on disk with the job spec the plan gives it."""
    if STAGE[0] not in plan.all_methods:
        return False
    owner = plan.stage_owner(*STAGE)
    return all(_spec_matches(plan.checkpoint_of(owner, s), plan.train_job(owner[0], s, owner[1])) for s in plan.seeds)


def frozen_backbones(board, cells: dict[str, str | None], profile: str | None, cores: str) -> dict[str, str]:
    """Board run → the run whose results hold the fine-tuned backbone the frozen heads train on (the board's own
    run, or ``<board run>-backbone``), training it there first where neither has it."""
    from ..io import write_text
    from ..plan import Plan, expand_grid, train_path, validate_config
    from .derive import derived_config, only_cells, snakemake_command

    board_plans = {r: Plan(c) for r, c in expand_grid(validate_config(copy.deepcopy(board.config))).items()
                   if r in cells}
    top = board.config["run"]
    cache_run = f"{top}-backbone"
    cache_cfg = derived_config(only_cells(board.config, cells), cache_run, {}, carry=(STAGE[0],))
    cache_plans = {(r.split("/", 1)[1] if "/" in r else None): Plan(c)
                   for r, c in expand_grid(validate_config(copy.deepcopy(cache_cfg))).items()}
    out, todo = {}, []
    for board_run, cell in cells.items():
        bp, cp = board_plans[board_run], cache_plans[cell]
        # the board run's checkpoint is read under its own name (a stage the board trains as another method's, of
        # the same spec, is left to the run of its own)
        owner = bp.stage_owner(*STAGE) if STAGE[0] in bp.all_methods else None
        if owner == STAGE and trained(bp):
            print(f"frozen protocol: the heads train on the board's fine-tuned backbone of your run of the board, "
                  f"{bp.checkpoint_of(owner, bp.seeds[0]).replace(f'seed{bp.seeds[0]}', 'seed<s>')} (its job spec "
                  f"is the board's)", flush=True)
            out[board_run] = board_run
            continue
        out[board_run] = cp.run
        where = train_path(cp.run, STAGE[0], "<s>", STAGE[1])
        if trained(cp):
            print(f"frozen protocol: the heads train on the board's fine-tuned backbone trained earlier for a frozen "
                  f"comparison, {where}", flush=True)
            continue
        print(f"frozen protocol: results/{board_run}/ holds no fine-tuned backbone with the board's job spec (the "
              f"board ships no checkpoints); training it once, with the board's backbone spec (seeds {cp.seeds}), "
              f"into {where}, where every later frozen comparison against the board finds it", flush=True)
        todo += [train_path(cp.run, STAGE[0], s, STAGE[1]) for s in cp.seeds]
    if todo:
        path = Path("results") / cache_run / "backbone.yaml"
        import yaml

        write_text(path, yaml.safe_dump(cache_cfg, sort_keys=False))
        rc = subprocess.call(snakemake_command(todo, path, profile, cores, None))
        if rc:
            from ..errors import fail

            raise fail(f"training the board's fine-tuned backbone failed (snakemake exited with code {rc})",
                       f"see its log above (results/{cache_run}/logs/)")
    return out
