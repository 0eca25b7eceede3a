"""The LGViT paper's ablations as variants of one base method (spec methods §1.2; paper Tables 2, 3, 4, 6, 7, Fig. 4),
and eebench's own EEformer ablation (heads GLH / LPH+GAH / MLP × fine-tuning normal / two-stage / progressive).

Every ablation row is the base recipe (LGViT) with one thing swapped: the heads (MLP, Conv, Attention, or LPH
replaced by MLP), the training scheme (Normal, Weighted, Distillation, Alternating, two-stage), the exit positions, or
the number of exits. Variants with identical model and training specs are trained once (``Plan.canonical``).
"""
from __future__ import annotations

from typing import Any

from .training.schemes import SCHEMES, TITLES

HEAD_TITLES = {"mlp": "MLP", "conv": "Conv", "attention": "Attention", "lgvit": "Ours (LPH+GAH)", "glh": "GLH †"}
# the EEformer table's labels: its heads and schemes are reconstructions (†, spec methods §6)
EEFORMER_HEADS = {"glh": "GLH †", "lgvit": "LPH+GAH (LGViT)", "mlp": "MLP"}
EEFORMER_SCHEMES = {"normal": "Normal", "two_stage": "Two-stage (LGViT)", "progressive": "Progressive three-stage †",
                    "progressive_calibration": "Progressive, stage 3 = calibration †",
                    "progressive_swapped": "Progressive, stages 2/3 swapped †"}


def variant_overrides(base_over: dict | None, scheme: str | None = None, heads: str | None = None,
                      positions: list[int] | None = None, heads_replace: dict | None = None) -> dict[str, Any]:
    """The base method's config overrides, re-aimed at a variant (stage overrides kept where the stage still exists)."""
    over = {k: v for k, v in (base_over or {}).items() if k not in ("stages", "heads", "positions")}
    stage_over = dict((base_over or {}).get("stages") or {})
    if scheme:
        over["scheme"] = scheme
        names = {s["name"] for s in SCHEMES[scheme]}
        stage_over = {k: v for k, v in stage_over.items() if k in names}
    if stage_over:
        over["stages"] = stage_over
    if heads and heads != "lgvit":
        over["heads"] = {"type": heads}
    if heads_replace:
        over["heads_replace"] = heads_replace
    if positions is not None:
        over["positions"] = list(positions)
    return over


def build_variants(abl: dict[str, Any], base_over: dict | None) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """→ (variant name → overrides of the base recipe, table name → rows). A row names its variant and its labels."""
    if abl.get("stages"):  # per-stage overrides of every variant that has the stage (e.g. a short stage 3)
        base_over = {**(base_over or {}), "stages": {**((base_over or {}).get("stages") or {}), **abl["stages"]}}
    variants: dict[str, dict] = {}
    tables: dict[str, list[dict]] = {k: [] for k in ("table2", "table3", "table4", "table6", "table7", "fig4",
                                                     "eeformer_ablation")}

    def add(name, **kw):
        variants.setdefault(name, variant_overrides(base_over, **kw))
        return name

    for head in abl["heads"]:
        for scheme in abl["schemes"]:
            v = add(f"abl-{head}-{scheme}", scheme=scheme, heads=head)
            tables["table6"].append({"method": v, "Exiting heads": HEAD_TITLES.get(head, head),
                                     "Training scheme": TITLES[scheme]})
            if scheme == "two_stage":
                tables["table3"].append({"method": v, "Exiting head": HEAD_TITLES.get(head, head)})
            if head == "lgvit":
                tables["table4"].append({"method": v, "Training scheme": TITLES[scheme]})
    # Table 2: LPH / GAH / two-stage on or off; an "off" head is the pooler+fc (MLP) exit
    for name, (lph, gah, two), kw in [
            ("abl-mlp-normal", "×××", dict(scheme="normal", heads="mlp")),
            ("abl-mlp-two_stage", "××✓", dict(scheme="two_stage", heads="mlp")),
            ("abl-gah_only-two_stage", "×✓✓", dict(scheme="two_stage", heads_replace={"lph": {"type": "mlp"}})),
            ("abl-lgvit-two_stage", "✓✓✓", dict(scheme="two_stage"))]:
        add(name, **kw)
        tables["table2"].append({"method": name, "LPH": lph, "GAH": gah, "Two-stage training": two})
    for label, pos in (abl.get("positions") or {}).items():
        v = add(f"abl-pos-{label}", scheme="two_stage", positions=pos)
        tables["table7"].append({"method": v, "Position scheme": label.capitalize(),
                                 "Exiting position": "{" + ",".join(map(str, pos)) + "}"})
    for count, pos in sorted((abl.get("num_exits") or {}).items(), key=lambda kv: int(kv[0])):
        v = add(f"abl-exits-{count}", scheme="two_stage", positions=pos)
        tables["fig4"].append({"method": v, "Number of exits": int(count),
                               "Exiting position": "{" + ",".join(map(str, pos)) + "}"})
    eef = abl.get("eeformer")
    for head in (eef or {}).get("heads", []):  # our own design: the paper's ablation is not public
        for scheme in eef.get("schemes", []):
            v = add(f"abl-{head}-{scheme}", scheme=scheme, heads=head)
            tables["eeformer_ablation"].append({"method": v, "Exit heads": EEFORMER_HEADS.get(head, head),
                                                "Fine-tuning": EEFORMER_SCHEMES.get(scheme, TITLES[scheme])})
    return variants, tables
