"""Method recipes (``baselines/*.yaml``): which heads at which blocks, which training stages, which exit policy and
sweep grid, which paper. Adding a method is dropping one file; ``extra_recipe_dirs`` in a config adds user folders."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import fail

REPO_RECIPES = Path(__file__).resolve().parents[1] / "baselines"
STAGE_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_ratio", "grad_clip")


def recipe_dirs(extra: list[str] | None = None) -> list[Path]:
    dirs = [Path(p) for p in (extra or [])]
    if os.environ.get("EEBENCH_RECIPES"):
        dirs += [Path(p) for p in os.environ["EEBENCH_RECIPES"].split(os.pathsep)]
    return dirs + [REPO_RECIPES]


def available(extra: list[str] | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(recipe_dirs(extra)):
        for f in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            found[f.stem] = f
    return dict(sorted(found.items()))


def variant_names(extra: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """``<method>_<variant>`` → (method, variant) for every ``variants:`` entry of every recipe."""
    out = {}
    for name in available(extra):
        for variant in (_read_recipe(name, available(extra)).get("variants") or {}):
            out[f"{name}_{variant}"] = (name, variant)
    return out


def load_recipe(name: str, extra: list[str] | None = None) -> dict[str, Any]:
    """A recipe by name. ``<method>_<variant>`` is a named variant of a recipe (``variants: {port: {...}}``): the
    variant's keys replace the recipe's whole (the LGViT port of a baseline shares its heads' and losses' code and
    differs only in declared switches, spec baselines §9, §11.6)."""
    files = available(extra)
    if name not in files:
        variants = variant_names(extra)
        if name in variants:
            base, variant = variants[name]
            recipe = _read_recipe(base, files)
            return {**{k: v for k, v in recipe.items() if k != "variants"}, **recipe["variants"][variant],
                    "variant_of_recipe": base}
        raise fail(f"unknown method {name!r}", f"choose one of: {', '.join([*files, *variants])} "
                   f"(or add baselines/{name}.yaml)")
    return _read_recipe(name, files)


def _read_recipe(name: str, files: dict[str, Path]) -> dict[str, Any]:
    try:
        recipe = yaml.safe_load(files[name].read_text())
    except yaml.YAMLError as err:
        raise fail(f"recipe {files[name]} is not valid YAML ({str(err).splitlines()[0]})", "fix the file") from err
    if not isinstance(recipe, dict) or "stages" not in recipe:
        raise fail(f"recipe {files[name]} has no 'stages'", "see baselines/lgvit.yaml for the format")
    if not isinstance(recipe.get("variants") or {}, dict) or not all(
            isinstance(v, dict) for v in (recipe.get("variants") or {}).values()):
        raise fail(f"recipe {files[name]}: variants must map a variant name to recipe keys",
                   "write e.g. variants: {port: {title: ..., policy: ...}}")
    return recipe


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in (override or {}).items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def exit_positions(recipe: dict, num_layers: int) -> list[int]:
    pos = recipe.get("positions", "all")
    if pos == "none":
        return []
    if pos == "all":  # after every block but the last (the final classifier answers there)
        return list(range(1, num_layers))
    if pos == "every":  # DeeBERT/BERxiT: an off-ramp after every block, the last one included
        return list(range(1, num_layers + 1))
    if isinstance(pos, dict):
        if num_layers not in pos and str(num_layers) not in pos:
            raise fail(f"method {recipe['name']!r} lists exit positions for depths {sorted(pos)}, not {num_layers}",
                       "add positions for this depth to the recipe, or set methods.<name>.positions in the config")
        return list(pos.get(num_layers, pos.get(str(num_layers))))
    return list(pos)


def head_specs(recipe: dict, count: int) -> list[dict]:
    heads = recipe.get("heads", {})
    if "by_count" in heads:
        table = heads["by_count"]
        specs = table.get(count, table.get(str(count)))
        if specs is None:
            raise fail(f"method {recipe['name']!r} defines heads for {sorted(table)} exits, not {count}",
                       "choose a number of exit positions the recipe supports")
        return [dict(s) for s in specs]
    return [dict(heads) for _ in range(count)]


def for_family(recipe: dict, family: str | None) -> dict:
    """A recipe's ``by_family: {swin: {heads: …, positions: …}}`` replaces those keys whole on that backbone family
    (the LGViT port puts different heads at different blocks on Swin, spec methods §1.2, §2.1)."""
    recipe = dict(recipe)
    table = recipe.pop("by_family", None) or {}
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise fail(f"method {recipe.get('name')!r}: by_family must map a family to recipe keys",
                   "write e.g. by_family: {swin: {heads: {type: linear}, positions: {24: [4, 7]}}}")
    return {**recipe, **table.get(family, {})}


def resolve_method(name: str, overrides: dict | None, num_layers: int, training: dict,
                   extra_dirs: list[str] | None = None, family: str | None = None) -> dict[str, Any]:
    """Recipe (for the backbone ``family``) + config overrides → a JSON-able method spec with every stage's
    hyper-parameters filled in."""
    overrides = dict(overrides or {})
    stage_over = overrides.pop("stages", {}) or {}
    # ``recipe: NAME`` builds this entry from another recipe: a second, differently configured copy of a method,
    # or a new head compared under a baseline's protocol
    recipe = for_family(load_recipe(overrides.pop("recipe", name), extra_dirs), family)
    for key in ("heads", "positions"):  # a new head layout or position list replaces the recipe's whole
        if key in overrides:
            recipe[key] = overrides.pop(key)
    new_policy = (overrides.get("policy") or {}).get("name")
    if new_policy and new_policy != (recipe.get("policy") or {}).get("name"):  # another rule: its own params/sweep
        recipe["policy"] = overrides.pop("policy")
    if "scheme" in overrides:  # a named training scheme replaces the recipe's stages (ablations, Tables 4/6)
        from .training.schemes import scheme_stages

        recipe["stages"] = scheme_stages(overrides.pop("scheme"))
    replace = overrides.pop("heads_replace", {}) or {}  # e.g. {lph: {type: mlp}}: Table 2's "no LPH" row
    recipe = deep_merge(recipe, overrides)
    recipe["name"] = name
    exits = exit_positions(recipe, num_layers)
    stages = []
    for st in recipe["stages"]:
        unknown = set(stage_over) - {s["name"] for s in recipe["stages"]}
        if unknown:
            raise fail(f"config overrides unknown stage(s) {sorted(unknown)} of method {name!r}",
                       f"its stages are {[s['name'] for s in recipe['stages']]}")
        merged = deep_merge({k: training[k] for k in STAGE_KEYS if k in training}, st)
        merged = deep_merge(merged, stage_over.get(st["name"], {}))
        scale = merged.pop("lr_scale", None)  # a stage's learning rate relative to the run's (EEformer's stage 3)
        if scale is not None and "lr" in merged:
            merged["lr"] = float(merged["lr"]) * float(scale)
        escale = merged.pop("epochs_scale", None)  # a stage's epochs relative to the run's (COST-EFF's TA phase a)
        if escale is not None and "epochs" in merged:
            # Floored, as the official run.sh's integer division E/3 is (E = 5 gives 1, not 2); never below one
            # epoch. The 1e-6 absorbs the yaml's 0.3333333333 (E = 6 → 2, not 1).
            merged["epochs"] = max(1, math.floor(int(merged["epochs"]) * float(escale) + 1e-6))
        merged.setdefault("train", "all")
        if recipe.get("frozen_backbone_mode") is not None and merged["train"] == "heads":
            # a recipe-wide mode for every heads-only stage, a scheme's included (EEformer on text: eval)
            merged.setdefault("frozen_backbone_mode", recipe["frozen_backbone_mode"])
        merged.setdefault("init", None)
        merged.setdefault("loss_params", {})
        if merged.get("teacher") is None:
            merged.pop("teacher", None)
        stages.append(merged)
    return {
        "name": name,
        "title": recipe.get("title", name),
        "citation": recipe.get("citation", ""),
        "exit_layers": exits,
        "heads": [dict(replace.get(h["type"], h)) for h in head_specs(recipe, len(exits))],
        "lte": bool(recipe.get("lte", False)),
        **({"final_head": dict(recipe["final_head"])} if recipe.get("final_head") else {}),
        **({"gradient_equilibrium": True} if recipe.get("gradient_equilibrium") else {}),
        **({"slender": dict(recipe["slender"] or {})} if "slender" in recipe else {}),
        "stages": stages,
        "policy": recipe.get("policy", {"name": "lgvit_confidence", "sweep": {"threshold": [1.0]}}),
        "switches": recipe.get("switches", {}),
        "semantics": recipe.get("semantics", "official code"),
        "recipe": recipe.get("variant_of_recipe", name),  # the method a variant is of (its row in the paper)
        "reconstructed": bool(recipe.get("reconstructed", False)),
    }
