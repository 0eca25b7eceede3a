"""Config → the jobs of a run. The Snakefile only wires these together; the same functions serve the CLI.

A run config names a dataset, a backbone, training defaults and the methods to compare; each method's recipe
(``baselines/<name>.yaml``) is merged with the config's overrides into a method spec, and every stage of every method
and seed becomes one training job whose JSON spec is also its Snakemake ``params`` (so editing a hyper-parameter
reruns exactly the jobs that depend on it).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import fail
from .paths import costs_path, curve_path, latency_path, logits_path, store_path, train_path  # noqa: F401  (plan.*)
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


def expand_grid(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config → its runs. A ``grid:`` (the paper's backbones × datasets) makes one run per cell, named
    ``<run>/<cell>``: the cell's keys override the top level, mappings deep-merged, except ``methods``, which when
    given replaces the whole set (STS-B runs only the methods that can regress). To change a method in one cell
    without restating the set, a cell gives ``method_overrides: {cost_eff: {stages: …}}``: deep-merged into the
    top level's ``method_overrides`` here, and into each method's overrides by the plan (:class:`Plan`).
    ``smoke: true`` turns every run into its miniature, named ``<run>-smoke`` (``eebench.smoke``)."""
    runs = _expand(config)
    if not config.get("smoke"):
        return runs
    from .smoke import miniature, smoke_run_name

    out = {}
    for cfg in runs.values():
        mini = miniature(cfg)
        mini["run"] = smoke_run_name(cfg["run"])
        out[mini["run"]] = mini
    return out


def _expand(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from .recipes import deep_merge

    if not config.get("grid"):
        for key in ("dataset", "backbone"):
            if key not in config:
                raise fail(f"config error at (top level): {key!r} is a required property",
                           "give a dataset and a backbone, or a grid of them")
        return {config["run"]: config}
    runs = {}
    for cell in config["grid"]:
        base = {k: v for k, v in config.items() if k != "grid"}
        over = {k: v for k, v in cell.items() if k != "name"}
        if "methods" in over:
            base.pop("methods", None)
        sub = deep_merge(base, over)
        sub["run"] = f"{config['run']}/{cell['name']}"
        runs[sub["run"]] = validate_config(sub)
        if "dataset" not in sub or "backbone" not in sub:
            raise fail(f"grid cell {cell['name']!r} has no dataset or backbone", "give both, in the cell or on top")
    return runs


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file as data. A YTE template (``__use_yte__: true``) is Python that Snakemake would run while
    loading it, so it is refused before any Snakemake sees it."""
    path = Path(path)
    if not path.is_file():
        raise fail(f"config file {path} does not exist", "pass an existing file, e.g. config/default.yaml")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise fail(f"config file {path} is not valid YAML ({str(err).splitlines()[0]})", "fix the syntax") from err
    if not isinstance(config, dict):
        raise fail(f"config file {path} holds a {type(config).__name__}, not a mapping of keys",
                   "start from config/default.yaml")
    if "__use_yte__" in config:
        raise fail(f"config file {path} is a YTE template (__use_yte__), which would run code when loaded",
                   "write the config as plain YAML: an eebench config is data, never code")
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    return validate_config(read_config(path))


@lru_cache(maxsize=None)
def _depth(backbone_json: str) -> int:
    """Number of blocks, read from the preset without building the model."""
    import json

    from .backbones import BACKBONES

    spec = json.loads(backbone_json)
    preset = BACKBONES.get(spec["name"])
    return int(spec.get("num_hidden_layers", preset.defaults.get("num_hidden_layers", 12)))


def _family(backbone_name: str) -> str:
    from .backbones import BACKBONES

    return BACKBONES.get(backbone_name).family


class Plan:
    """All jobs of one config: methods × seeds × stages, plus the per-method evaluation and costs."""

    def __init__(self, config: dict[str, Any]):
        import json

        from .checks import check_dataset, check_plan
        from .names import check_name, check_run_name

        self.config = config
        self.run = check_run_name(config["run"])
        for name in config.get("methods") or {}:
            check_name(name, f"methods.{name}")
        self.seeds = list(config["seeds"])
        check_dataset(config)
        self.num_layers = _depth(json.dumps(config["backbone"], sort_keys=True))
        self.family = _family(config["backbone"]["name"])  # recipes pick heads/positions by backbone family
        from .plugins import load_plugin_files

        self.plugin_heads = load_plugin_files(config.get("plugins"))  # user head files: registered before resolving
        self.methods = {name: self._resolve(name, self.overrides(name)) for name in (config["methods"] or {})}
        if not self.methods:
            raise fail("the config lists no methods", "add at least one under 'methods:' (see `eebench list methods`)")
        # methods whose stages others start from (DeeBERT's stage 2 on the fine-tuned backbone, COST-EFF's teacher)
        # run even when the config does not report them
        self.all_methods = dict(self.methods)
        todo = list(self.methods)
        while todo:
            for st in self.all_methods[todo.pop()]["stages"]:
                for ref in (st.get("init") or "", st.get("teacher") or ""):  # COST-EFF distils from other stages
                    dep = ref.partition(":")[0] if ":" in ref else None
                    if dep and dep not in self.all_methods:
                        self.all_methods[dep] = self._resolve(dep, self.overrides(dep))
                        todo.append(dep)
        unused = sorted(set(config.get("method_overrides") or {}) - set(self.all_methods))
        if unused:
            raise fail(f"run {self.run!r}: method_overrides names {', '.join(map(repr, unused))}, which the run "
                       f"neither lists under methods nor trains for another method",
                       f"remove it, or list it under methods (the run trains: {', '.join(self.all_methods)})")

        apart = sorted(set(config["training"].get("own_shares") or []) - set(self.methods))
        if apart:
            raise fail(f"run {self.run!r}: training.own_shares names {', '.join(map(repr, apart))}, which the run "
                       f"does not list under methods", f"name methods of the run ({', '.join(self.methods)})")

        gpus = ((config.get("resources") or {}).get("train") or {}).get("gpu", 1)
        if isinstance(gpus, str) and gpus.isdigit():  # snakemake --config resources=… passes strings
            gpus = int(gpus)
        if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
            raise fail(f"run {self.run!r}: resources.train.gpu = {gpus!r} is not a number of devices",
                       "give an integer >= 1 (the data-parallel ranks of each training job)")
        # ranks per training job (DDP under torchrun when > 1); a smoke run asks for no GPU: one process
        self.train_devices: int = 1 if config.get("smoke") else gpus
        self.ablation_seeds: list[int] = []
        self.tables: dict[str, list[dict]] = {}
        if config.get("ablations"):
            self._add_ablations(config["ablations"])
        # identical model + training specs are trained once: every name maps to the first with the same spec
        first: dict[str, str] = {}
        self.canonical = {name: first.setdefault(training_key(m), name) for name, m in self.all_methods.items()}
        # a stage depends only on the architecture and the stages up to it: methods whose schemes share a prefix share
        # those stages' jobs (EEformer's three stages start with LGViT's two)
        first_stage: dict[str, tuple[str, str]] = {}
        self._stage_owner = {}
        for name, m in self.all_methods.items():
            for i, st in enumerate(m["stages"]):
                key = json.dumps({"arch": arch_key(m), "stages": m["stages"][:i + 1]}, sort_keys=True)
                self._stage_owner[(name, st["name"])] = first_stage.setdefault(key, (self.canonical[name], st["name"]))
        self.external = self._external_stages(config.get("external_stages") or {})
        # and identical architectures are costed once
        first_arch: dict[str, str] = {}
        self.cost_canonical = {name: first_arch.setdefault(cost_key(m), name) for name, m in self.all_methods.items()}
        check_plan(self)  # what would fail in a job hours later fails here, at `snakemake -n`

    def _external_stages(self, table: dict[str, str]) -> dict[tuple[str, str], str]:
        """``external_stages: {"<method>:<stage>": <run>}`` → {(method, stage) as trained: run}. The run reads that
        stage's checkpoint from ``results/<run>/train/`` instead of training it: ``eebench compare --protocol frozen``
        trains a head on a board's fine-tuned backbone without training (or overwriting) the backbone in the
        comparison's own run. Only a stage trained for another method may be external: a reported method's last
        stage is evaluated in this run, from this run's files."""
        from .names import check_run_name

        out = {}
        for ref, run in table.items():
            method, _, stage = str(ref).rpartition(":")
            if not method or method not in self.all_methods:
                raise fail(f"config error at external_stages: {ref!r} names no stage of a method this run trains",
                           f"write <method>:<stage> with a method of {', '.join(self.all_methods)}")
            owner = self.stage_owner(method, stage)
            check_run_name(run)
            if run == self.run:
                raise fail(f"config error at external_stages.{ref}: {run!r} is this run itself",
                           "name the run whose results hold that stage, or leave the stage out")
            reported = {self._final(m) for m in self.methods}
            if owner in reported:
                raise fail(f"config error at external_stages.{ref}: the run reports that stage's model "
                           f"({owner[0]})", "read only a stage that another method starts from")
            out[owner] = run
        return out

    def checkpoint_of(self, owner: tuple[str, str], seed: int) -> str:
        """The checkpoint of a trained stage (as ``stage_owner`` names it): this run's, or an external run's."""
        return train_path(self.external.get(owner, self.run), owner[0], seed, owner[1])

    def trains(self, method: str, stage: str) -> bool:
        """Whether this run trains the stage itself: it is the stage's owner and the stage is not external."""
        owner = self.stage_owner(method, stage)
        return owner == (method, stage) and owner not in self.external

    def overrides(self, name: str) -> dict[str, Any]:
        """A method's overrides of its recipe: its ``methods:`` entry, then ``method_overrides:`` deep-merged into it
        (a grid cell's per-task values; also the way to configure a method the run trains only because another
        method starts from or distils from it, such as COST-EFF's fine-tuned teacher, without reporting it)."""
        from .recipes import deep_merge

        return deep_merge((self.config["methods"] or {}).get(name) or {},
                          (self.config.get("method_overrides") or {}).get(name) or {})

    def _resolve(self, name: str, overrides: dict | None, training: dict | None = None) -> dict[str, Any]:
        """A recipe resolved for this run's backbone (depth, family) and training defaults (a smoke run: one epoch
        per stage, whatever the recipe or config says)."""
        from .plugins import plugin_record

        spec = resolve_method(name, overrides, self.num_layers, training or self.config["training"],
                              self.config.get("extra_recipe_dirs", []), family=self.family)
        if self.config.get("smoke"):
            from .smoke import one_epoch

            spec["stages"] = one_epoch(spec["stages"])
        by_task = (spec["policy"] or {}).get("sweep_by_task")
        if by_task is not None:  # a sweep grid per GLUE task (COST-EFF: MNLI's differs from the binary tasks')
            policy = {k: v for k, v in spec["policy"].items() if k != "sweep_by_task"}
            task = self.config["dataset"].get("task")
            spec["policy"] = {**policy, "sweep": by_task[task]} if task in by_task else policy
        if "slender" in spec:  # COST-EFF's width target, resolved for this backbone; its pruning stage reads it
            from .slender.presets import resolve_target

            spec["slender"] = resolve_target(spec["slender"], self.config["backbone"], name)
            for st in spec["stages"]:
                if st.get("slenderise") is not None:
                    st["slenderise"] = {**(st["slenderise"] or {}), "target": spec["slender"]}
        plugins = plugin_record([h["type"] for h in spec["heads"]], self.plugin_heads)
        return {**spec, "plugins": plugins} if plugins else spec  # only a plugin head's jobs carry its file

    def _add_ablations(self, abl: dict[str, Any]) -> None:
        from .ablations import build_variants

        base = abl["base"]
        base_over = self.overrides(base)
        training = {**self.config["training"], **(abl.get("training") or {})}
        variants, self.tables = build_variants(abl, base_over)
        for name, over in variants.items():
            spec = self._resolve(base, over, training)
            self.all_methods[name] = {**spec, "name": name, "variant_of": base}
        self.ablation_seeds = list(abl.get("seeds") or self.seeds)

    def train_groups(self) -> dict[str, list[tuple[str, int, str]]]:
        """(method, seed, stage) jobs trained together, a few to a process, when the config asks (eebench.shares)."""
        from .shares import train_groups

        return train_groups(self)

    def reported(self) -> list[tuple[str, int]]:
        """Every (method or variant, seed) whose operating curve a report reads."""
        pairs = [(m, s) for m in self.methods for s in self.seeds]
        pairs += [(v, s) for v in self.all_methods if v not in self.methods and "variant_of" in self.all_methods[v]
                  for s in self.ablation_seeds]
        return pairs

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
                **{k: self.config["training"][k] for k in ("device", "precision", "cpu_precision")
                   if k in self.config["training"]},
                "method": architecture(m), "stage": self.stage(method, stage)}

    def last_stage(self, method: str) -> str:
        return self.method(method)["stages"][-1]["name"]

    def stage_owner(self, method: str, stage: str) -> tuple[str, str]:
        """(method, stage) whose job trains this stage: the first method with the same architecture and stages up to
        it (itself unless shared)."""
        self.stage(method, stage)
        return self._stage_owner[(method, stage)]

    def final_logits(self, method: str, seed: int) -> str:
        """The exit-logit cache a method is evaluated on: its last stage's, of the job it is trained as."""
        owner, stage = self._final(method)
        return logits_path(self.run, owner, seed, stage)

    def final_checkpoint(self, method: str, seed: int) -> str:
        owner, stage = self._final(method)
        return train_path(self.run, owner, seed, stage)

    def _final(self, method: str) -> tuple[str, str]:
        return self.stage_owner(method, self.last_stage(method))

    def init_stage(self, method: str, stage: str, key: str = "init") -> tuple[str, str] | None:
        """(method, stage) a stage starts from: ``init: stage1`` (same method) or ``init: backbone:finetune``; a
        shared stage is named by the job that trains it. ``key="teacher"``: the stage a distillation loss reads."""
        init = self.stage(method, stage).get(key)
        if not init:
            return None
        other, _, st = init.rpartition(":")
        return self.stage_owner(other or method, st)

    def teacher_stage(self, method: str, stage: str) -> tuple[str, str] | None:
        return self.init_stage(method, stage, "teacher")

    def root(self) -> str:
        return f"results/{self.run}"


def training_key(method: dict[str, Any]) -> str:
    """What decides a trained model: architecture (not its name) and the stages with every hyper-parameter."""
    import json

    return json.dumps({k: method[k] for k in (*ARCH_KEYS, "stages") if k in method}, sort_keys=True)


ARCH_KEYS = ("exit_layers", "heads", "lte", "plugins", "final_head", "gradient_equilibrium")


def arch_key(method: dict[str, Any]) -> str:
    """What a model is built as (a COST-EFF width target is reached by training, so stages before it are shared)."""
    import json

    return json.dumps({k: method[k] for k in ARCH_KEYS if k in method}, sort_keys=True)


def cost_key(method: dict[str, Any]) -> str:
    """What the cost count depends on: the built architecture and the width it is pruned to."""
    import json

    return json.dumps({k: method[k] for k in (*ARCH_KEYS, "slender") if k in method}, sort_keys=True)


def architecture(method: dict[str, Any]) -> dict[str, Any]:
    """The part of a method spec that fixes the model (what costs depend on)."""
    return {k: method[k] for k in ("name", *ARCH_KEYS, "slender") if k in method}
