"""Config → the jobs of a run. The Snakefile only wires these together; the same functions serve the CLI.

A run config names a dataset, a backbone, training defaults and the methods to compare; each method's recipe
(``baselines/<name>.yaml``) is merged with the config's overrides into a method spec, and every stage of every method
and seed becomes one training job whose JSON spec is also its Snakemake ``params`` (so editing a hyper-parameter
reruns exactly the jobs that depend on it).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import fail
from .recipes import resolve_method

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """JSON-schema validation with defaults filled in (the same schema Snakemake's ``validate`` uses)."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    validator_cls = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        {"properties": _fill_defaults(jsonschema.Draft202012Validator.VALIDATORS["properties"])})
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "(top level)"
        raise fail(f"config error at {where}: {err.message}", f"fix it (schema: {SCHEMA.name})")
    return config


def _fill_defaults(validate_properties):
    def fill(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(prop, sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return fill


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise fail(f"config file {path} does not exist", "pass an existing file, e.g. config/default.yaml")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise fail(f"config file {path} is not valid YAML ({str(err).splitlines()[0]})", "fix the syntax") from err
    return validate_config(config)


@lru_cache(maxsize=None)
def _depth(backbone_json: str) -> int:
    """Number of blocks, read from the preset without building the model."""
    import json

    from .backbones import BACKBONES

    spec = json.loads(backbone_json)
    preset = BACKBONES.get(spec["name"])
    return int(spec.get("num_hidden_layers", preset.defaults.get("num_hidden_layers", 12)))


class Plan:
    """All jobs of one config: methods × seeds × stages, plus the per-method evaluation and costs."""

    def __init__(self, config: dict[str, Any]):
        import json

        self.config = config
        self.run = config["run"]
        self.seeds = list(config["seeds"])
        self.num_layers = _depth(json.dumps(config["backbone"], sort_keys=True))
        extra = config.get("extra_recipe_dirs", [])
        self.methods = {name: resolve_method(name, over, self.num_layers, config["training"], extra)
                        for name, over in (config["methods"] or {}).items()}
        if not self.methods:
            raise fail("the config lists no methods", "add at least one under 'methods:' (see `eebench list methods`)")
        # methods whose stages others start from (DeeBERT's stage 2 on the fine-tuned backbone) run even when the
        # config does not report them
        self.all_methods = dict(self.methods)
        todo = list(self.methods)
        while todo:
            for st in self.all_methods[todo.pop()]["stages"]:
                dep = (st.get("init") or "").partition(":")[0] if ":" in (st.get("init") or "") else None
                if dep and dep not in self.all_methods:
                    over = (config["methods"] or {}).get(dep)
                    self.all_methods[dep] = resolve_method(dep, over, self.num_layers, config["training"], extra)
                    todo.append(dep)

    def method(self, name: str) -> dict[str, Any]:
        if name not in self.all_methods:
            raise fail(f"method {name!r} is not in run {self.run!r}", f"methods here: {', '.join(self.methods)}")
        return self.all_methods[name]

    def stage(self, method: str, stage: str) -> dict[str, Any]:
        for st in self.method(method)["stages"]:
            if st["name"] == stage:
                return st
        raise fail(f"method {method!r} has no stage {stage!r}", "check the recipe's stages")

    def train_job(self, method: str, seed: int, stage: str) -> dict[str, Any]:
        m = self.method(method)
        return {"run": self.run, "seed": int(seed), "dataset": self.config["dataset"],
                "backbone": self.config["backbone"], "threads": self.config["training"].get("threads", 1),
                "method": architecture(m), "stage": self.stage(method, stage)}

    def last_stage(self, method: str) -> str:
        return self.method(method)["stages"][-1]["name"]

    def init_stage(self, method: str, stage: str) -> tuple[str, str] | None:
        """(method, stage) a stage starts from: ``init: stage1`` (same method) or ``init: backbone:finetune``."""
        init = self.stage(method, stage).get("init")
        if not init:
            return None
        other, _, st = init.rpartition(":")
        return (other or method, st)

    def root(self) -> str:
        return f"results/{self.run}"


def architecture(method: dict[str, Any]) -> dict[str, Any]:
    """The part of a method spec that fixes the model (what costs depend on)."""
    return {k: method[k] for k in ("name", "exit_layers", "heads", "lte")}


def train_path(run: str, method: str, seed: int, stage: str) -> str:
    return f"results/{run}/train/{method}/seed{seed}/{stage}.pt"


def logits_path(run: str, method: str, seed: int) -> str:
    return f"results/{run}/logits/{method}/seed{seed}.npz"


def costs_path(run: str, method: str) -> str:
    return f"results/{run}/costs/{method}.json"


def curve_path(run: str, method: str, seed: int) -> str:
    return f"results/{run}/curves/{method}/seed{seed}.csv"
