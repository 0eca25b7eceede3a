"""Everything about a run that can be checked from its config alone, checked when the plan is built — so
``snakemake -n`` and ``eebench plan`` refuse a config that would fail in a job hours later (an unknown head, policy,
loss or dataset, exit positions outside the backbone, a policy parameter outside its domain, an operating point that
names a parameter a method's policy does not sweep). Each problem is one line naming the config key and the fix.
"""
from __future__ import annotations

import math
from typing import Any

from .errors import EEBenchError, fail


def _at(key: str, err: EEBenchError) -> EEBenchError:
    return EEBenchError(f"config error at {key}: {err}")


def _where(plan, method: str) -> str:
    """The config key a method's settings come from (an ablation variant's come from ``ablations``)."""
    spec = plan.all_methods[method]
    return f"ablations (variant {method!r} of {spec['variant_of']!r})" if "variant_of" in spec else f"methods.{method}"


def check_dataset(config: dict[str, Any]) -> None:
    from .data import DATASETS

    name = config["dataset"]["name"]
    if name not in DATASETS:
        raise fail(f"config error at dataset.name: unknown dataset {name!r}",
                   f"choose one of: {', '.join(DATASETS.names())} (see `eebench list datasets`)")
    check_dataset_options(config)
    check_backbone_options(config)


def check_dataset_options(config: dict[str, Any]) -> None:
    """A misspelt loader option (``tset_fraction``) fails at ``snakemake -n``, not when the first job starts."""
    import inspect

    from .data import DATASETS

    spec = {k: v for k, v in config["dataset"].items() if k != "name"}
    try:
        inspect.signature(DATASETS.get(config["dataset"]["name"])).bind(**spec)
    except TypeError as err:
        raise fail(f"config error at dataset: {err}", f"use the options of dataset {config['dataset']['name']!r} "
                   "(see `eebench list datasets`)") from None


def check_backbone_options(config: dict[str, Any]) -> None:
    """An override the backbone's transformers config does not have (``hiden_size``) would be stored on the config
    and silently ignored by the model: refuse it."""
    import inspect

    import transformers

    from .backbones import BACKBONES

    bb = config["backbone"]
    preset = BACKBONES.get(bb["name"])
    if not preset.hf_config:
        return
    hf = getattr(transformers, preset.hf_config)()
    known = {"name", "pretrained", *inspect.signature(preset.build).parameters}
    for key in bb:
        if key not in known and not hasattr(hf, key):
            raise fail(f"config error at backbone.{key}: {bb['name']!r} ({preset.hf_config}) has no option {key!r}",
                       "fix the spelling; the options are the fields of transformers' "
                       f"{preset.hf_config} (e.g. hidden_size, num_hidden_layers)")


def check_method(plan, method: str) -> None:
    from .heads import HEADS
    from .training import LOSSES

    spec, where, depth = plan.all_methods[method], _where(plan, method), plan.num_layers
    layers = spec["exit_layers"]
    if layers != sorted(set(layers)) or any(not 1 <= p <= depth for p in layers):
        raise fail(f"config error at {where}.positions: exit positions {layers} are not increasing blocks in "
                   f"1..{depth} of {plan.config['backbone']['name']}",
                   f"give blocks between 1 and {depth} (the final classifier answers after block {depth})")
    for head in spec["heads"]:
        if head.get("type") not in HEADS:
            raise fail(f"config error at {where}.heads: unknown head {head.get('type')!r}",
                       f"choose one of: {', '.join(HEADS.names())} (see `eebench list heads`)")
    for stage in spec["stages"]:
        if stage.get("loss") not in LOSSES:
            raise fail(f"config error at {where}.stages.{stage['name']}.loss: unknown loss {stage.get('loss')!r}",
                       f"choose one of: {', '.join(LOSSES.names())} (see `eebench list losses`)")
        if "frozen_backbone_mode" in stage:
            from .training.start import frozen_backbone_mode

            try:
                frozen_backbone_mode(stage)
            except EEBenchError as err:
                raise _at(f"{where}.stages.{stage['name']}.frozen_backbone_mode", err) from None
        if stage.get("feature_cache"):
            from .training.features import check_stage

            try:
                check_stage(stage)
            except EEBenchError as err:
                raise _at(f"{where}.stages.{stage['name']}.feature_cache", err) from None
        if stage.get("teacher"):  # the stage a distillation loss reads must exist (COST-EFF)
            try:
                plan.teacher_stage(method, stage["name"])
            except EEBenchError as err:
                raise fail(f"config error at {where}.stages.{stage['name']}.teacher: {stage['teacher']!r} names no "
                           f"stage ({str(err).split(' — ')[0]})", "name a stage of this method or <method>:<stage>")
    if spec.get("slender") and plan.family != "bert":
        raise fail(f"config error at {where}.slender: width pruning needs a BERT-family backbone, not "
                   f"{plan.config['backbone']['name']!r}", "run COST-EFF on bert_base_uncased, minilm_l6 or bert_tiny_test")
    check_policy(spec["policy"], f"{where}.policy")
    check_copy_pooler(plan, method, where)


def check_copy_pooler(plan, method: str, where: str) -> None:
    """``copy_pooler`` on a preset's own ViT/DeiT checkpoint: those store no pooler, so the copy would be random."""
    from .backbones import BACKBONES

    bb = plan.config["backbone"]
    preset = BACKBONES.get(bb["name"])
    preset_weights = bb.get("pretrained", True) is True and preset.pretrained is not None
    if preset_weights and plan.family in ("vit", "deit") and any(h.get("copy_pooler") for h in
                                                                   plan.all_methods[method]["heads"]):
        raise fail(f"config error at {where}.heads: copy_pooler on {preset.pretrained}, which stores no pooler "
                   "weights (ViT and DeiT checkpoints store none), would copy a random pooler",
                   f"set {where}.heads: {{type: mlp, copy_pooler: false}} (the LGViT port's random exit pooler)")


def check_policy(policy: dict[str, Any], where: str) -> None:
    """The policy exists, and every point of its sweep is a valid parameter set (domains included)."""
    from .curves import sweep_points
    from .policies import POLICIES, build_policy

    if policy.get("name") not in POLICIES:
        raise fail(f"config error at {where}.name: unknown policy {policy.get('name')!r}",
                   f"choose one of: {', '.join(POLICIES.names())} (see `eebench list policies`)")
    for point in sweep_points(policy):
        try:
            build_policy(policy["name"], **{**(policy.get("params") or {}), **point})
        except EEBenchError as err:
            raise _at(f"{where}.sweep" if point else f"{where}.params", err) from None


def _swept(policy: dict[str, Any]) -> dict[str, list]:
    return {k: list(v) for k, v in (policy.get("sweep") or {}).items()}


def check_operating_point(plan) -> None:
    """A ``fixed`` operating point must name, for every reported method with exits, parameters its policy sweeps,
    at values the sweep contains (``per_method`` / ``per_policy`` give each its own)."""
    from .policies import POLICIES
    from .report.summary import fixed_params

    rule = plan.config["report"]["operating_point"]
    if rule["rule"] != "fixed":
        return
    key = "report.operating_point"
    for name in rule.get("per_method") or {}:
        if name not in plan.all_methods:
            raise fail(f"config error at {key}.per_method: {name!r} is not a method of run {plan.run!r}",
                       f"use one of: {', '.join(plan.all_methods)}")
    for name in rule.get("per_policy") or {}:
        if name not in POLICIES:
            raise fail(f"config error at {key}.per_policy: unknown policy {name!r}",
                       f"choose one of: {', '.join(POLICIES.names())}")
    for method in dict.fromkeys(m for m, _ in plan.reported()):
        spec = plan.all_methods[method]
        if not spec["exit_layers"]:
            continue  # one row: every policy answers with the final classifier, there is no point to pick
        policy = spec["policy"]
        params, sweep = fixed_params(rule, method, policy["name"]), _swept(policy)
        fix = (f"set {key}.per_method.{method} or {key}.per_policy.{policy['name']} to a point of its sweep "
               f"{sweep}")
        if not params:
            raise fail(f"config error at {key}: method {method!r} (policy {policy['name']}) gets no fixed parameters",
                       fix)
        for param, value in params.items():
            if param not in sweep:
                raise fail(f"config error at {key}: method {method!r} (policy {policy['name']}) does not sweep "
                           f"{param!r}", fix)
            if not any(_close(value, v) for v in sweep[param]):
                raise fail(f"config error at {key}: method {method!r} sweeps {param} over {sweep[param]}, "
                           f"without {value!r}", f"add {value!r} to methods.{spec.get('variant_of', method)}"
                           f".policy.sweep.{param}, or pick one of its values")


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return a == b


def check_names(plan, method: str) -> None:
    """Every name of a method that becomes part of a path or a command line: its own (ablation variants included),
    its stages' and the stages they start from or distil from."""
    from .names import check_name

    where = _where(plan, method)
    check_name(method, where)
    for stage in plan.all_methods[method]["stages"]:
        check_name(stage.get("name"), f"{where}.stages")
        for ref in ("init", "teacher"):
            if stage.get(ref):
                for part in str(stage[ref]).split(":"):
                    check_name(part, f"{where}.stages.{stage['name']}.{ref}")


def check_plan(plan) -> None:
    """All the checks above, in the order a reader fixes them; the message names the run (a grid has several)."""
    try:
        for method in plan.all_methods:
            check_names(plan, method)
            check_method(plan, method)
        check_operating_point(plan)
    except EEBenchError as err:
        raise EEBenchError(f"run {plan.run!r}: {err}") from None
