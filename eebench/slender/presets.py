"""COST-EFF's slenderisation targets (spec methods §7.1), resolved for the run's backbone at plan time.

A target is heads kept per layer h, FFN neurons kept f and word-embedding rank r. The shipped rule (``run.sh``) scales
f and r with h: f = F/A·h and r = H/A·h (A heads, FFN width F, hidden width H). Presets:

- ``2x`` — as shipped: h = A/2 → BERT-base h=6, f=1536, r=384 (55.0 M parameters, ≈ 1/2 of BERT's).
- ``8x`` — [INFERRED] the paper's "1/8 parameters" point, not in the code: h = A/6 with the code's alternative FFN
  rule f = F/A·h/2 → BERT-base h=2, f=256, r=128 (13.9 M, ≈ 1/7.9).

On MiniLM-L6 (A=12 heads of 32 dims, H=384, F=1536) the same rules give 2x: h=6, f=768, r=192 and 8x: h=2, f=128,
r=64; on tiny test BERTs every count is at least 1. ``heads``/``ffn``/``rank`` given explicitly override a preset.
"""
from __future__ import annotations

from typing import Any

from ..errors import fail

PRESETS = {"2x": {"heads_fraction": 1 / 2, "ffn_factor": 1.0},
           "8x": {"heads_fraction": 1 / 6, "ffn_factor": 0.5}}


def backbone_dims(backbone: dict[str, Any]) -> dict[str, int]:
    """A (heads), F (FFN width), H (hidden width) of a BERT backbone spec, from its preset without building it."""
    from ..backbones import BACKBONES

    preset = BACKBONES.get(backbone["name"])
    cfg = {**preset.defaults, **backbone}
    hidden = int(cfg.get("hidden_size", 768))
    heads = int(cfg.get("num_attention_heads", 12))
    return {"heads": heads, "hidden": hidden, "ffn": int(cfg.get("intermediate_size") or 4 * hidden)}


def resolve_target(spec: dict[str, Any] | None, backbone: dict[str, Any], method: str) -> dict[str, Any]:
    """``{preset: 2x}`` or ``{heads: h, ffn: f, rank: r}`` (either may be combined) → ``{heads, ffn, rank, preset}``."""
    spec = dict(spec or {})
    unknown = set(spec) - {"preset", "heads", "ffn", "rank"}
    if unknown:
        raise fail(f"method {method!r}: unknown slender option(s) {sorted(unknown)}", "use preset, heads, ffn, rank")
    d = backbone_dims(backbone)
    name = spec.get("preset", "2x")
    if name not in PRESETS:
        raise fail(f"method {method!r}: slender preset {name!r} is unknown", f"choose one of {sorted(PRESETS)}")
    rule = PRESETS[name]
    heads = spec.get("heads", max(1, round(d["heads"] * rule["heads_fraction"])))
    target = {"preset": name, "heads": heads,
              "ffn": spec.get("ffn", max(1, round(d["ffn"] / d["heads"] * _num(heads) * rule["ffn_factor"]))),
              "rank": spec.get("rank", max(1, round(d["hidden"] / d["heads"] * _num(heads))))}
    for key, top in (("heads", d["heads"]), ("ffn", d["ffn"]), ("rank", d["hidden"])):
        value = target[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise fail(f"method {method!r}: slender {key}={value!r} is not an integer in 1..{top} for backbone "
                       f"{backbone['name']!r}", f"give {key} between 1 and {top}, or a preset ({', '.join(PRESETS)})")
    return target


def _num(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def target_shape(target: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """The shape a pruning run ends at: the target's widths in every layer."""
    return {"heads": [target["heads"]] * num_layers, "ffn": [target["ffn"]] * num_layers, "rank": target["rank"]}


def check_reached(model, method: dict[str, Any], where) -> dict[str, Any]:
    """The pruned shape of a trained model, which must be the method's width target (one line if not)."""
    from .prune import shape_of

    shape = shape_of(model)
    target = method.get("slender") or {}
    want = target_shape(target, len(shape["heads"])) if target else None
    if want and (shape["heads"] != want["heads"] or shape["ffn"] != want["ffn"] or shape["rank"] != want["rank"]):
        raise fail(f"{where} holds a model of {shape['heads']} heads, FFN {shape['ffn']}, rank {shape['rank']}, not "
                   f"the width target {target}", "rerun its pruning stage (the checkpoint is from another target)")
    return shape
