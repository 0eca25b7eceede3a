"""COST-EFF's table and Pareto figure (spec methods §7.4).

Table: one row per width preset × entropy threshold — parameters (total and encoder) and expected MACs/FLOPs per
sample relative to the fine-tuned backbone (fvcore MACs in the run's convention, padded and at each sample's real
length; FLOPs as COST-EFF counts them: torch.profiler, padded inputs), the metric and its retention of its teacher's:
the fine-tuned model its TA distils from (``backbone_costeff:finetune``, COST-EFF's own fine-tune, which need not be
the backbone row: config/glue.yaml trains that one as DeeBERT's stage 1). The table names the teacher, the job that
trained it and its hyper-parameters, so a retention figure says what it is relative to.
Figure: every method of the run at every operating point, metric vs expected MACs, marker area ∝ parameters — the
"Pareto" view of the paper (static width × dynamic depth).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .departures import text_batching_note
from .figures import finish_axes, save_figure
from .style import method_style
from .summary import mean_curve, metric_name, score_column
from .tables import write_table


def costeff_methods(plan) -> list[str]:
    """The run's COST-EFF entries: the methods with a width target (one per preset)."""
    return [m for m in plan.methods if plan.method(m).get("slender")]


TEACHER_KEYS = ("batch_size", "lr", "weight_decay", "no_decay", "warmup_ratio", "epochs", "select")


def costeff_teacher(plan, method: str) -> tuple[str, str] | None:
    """(method, stage) COST-EFF's TA distils from, as the recipe names it: the first stage whose ``teacher:`` is another
    method's stage (``backbone_costeff:finetune``)."""
    for st in plan.method(method)["stages"]:
        other, _, stage = (st.get("teacher") or "").rpartition(":")
        if other:
            return other, stage
    return None


def teacher_caches(plan) -> list[str]:
    """The exit-logit caches of the COST-EFF teachers' jobs (every stage writes one): the report's extra inputs."""
    from ..plan import logits_path

    out = set()
    for method in costeff_methods(plan):
        ref = costeff_teacher(plan, method)
        if ref:
            owner = plan.stage_owner(*ref)
            out |= {logits_path(plan.run, owner[0], seed, owner[1]) for seed in plan.seeds}
    return sorted(out)


def final_row_score(cache: dict[str, Any]) -> float:
    """The task metric of a cache's final classifier (its last row)."""
    from ..metrics import get_metric

    last = cache["logits"][-1]
    pred = last[:, 0] if last.shape[-1] == 1 else last.argmax(-1)  # one output: a regression task's prediction
    return float(get_metric(cache.get("metric")).score(pred.numpy(), cache["labels"].numpy()))


def teacher_record(plan, method: str) -> dict[str, Any] | None:
    """Which teacher a COST-EFF entry used, the job that trained it (shared with an identical spec, e.g. the backbone
    row's), its hyper-parameters and its score (mean over seeds), read from that job's exit-logit caches."""
    from ..evaluate import load_cache
    from ..plan import logits_path

    ref = costeff_teacher(plan, method)
    if ref is None:
        return None
    owner = plan.stage_owner(*ref)
    stage = plan.stage(*ref)
    scores = [final_row_score(load_cache(logits_path(plan.run, owner[0], seed, owner[1]))) for seed in plan.seeds]
    return {"teacher": ":".join(ref), "teacher_job": ":".join(owner), "teacher_score": sum(scores) / len(scores),
            **{f"teacher_{k}": _cell(stage.get(k)) for k in TEACHER_KEYS}}


def _cell(value):
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value  # one CSV cell


def _teacher_note(rec: dict[str, Any], metric: str) -> str:
    shared = "" if rec["teacher_job"] == rec["teacher"] else f", trained as {rec['teacher_job']} (identical spec)"
    n = rec["teacher_epochs"]
    skip = f" (not on {rec['teacher_no_decay']})" if rec["teacher_no_decay"] else ""
    kept = ", the best dev epoch kept" if rec["teacher_select"] else ", the last epoch kept"
    return (f"Teacher (the retention denominator): {rec['teacher']}{shared}: batch {rec['teacher_batch_size']}, lr "
            f"{_g(rec['teacher_lr'])}, weight decay {_g(rec['teacher_weight_decay'])}{skip}, warm-up "
            f"{_g(rec['teacher_warmup_ratio'])}, {n} epoch{'' if n == 1 else 's'}{kept}; {metric} "
            f"{rec['teacher_score'] * 100:.1f} %.")


def _g(value) -> str:
    return "0" if value is None else f"{float(value):g}"  # a stage key left out: the loop's default, 0


def _encoder_params(cost: dict[str, Any]) -> int:
    comps = cost["components"]
    return sum(c["params"] for n, c in comps.items() if n == "embed" or n.startswith("block"))


def costeff_table(plan, curves: dict[str, pd.DataFrame], costs: dict[str, dict], titles: dict[str, str], out_dir,
                  scale: str) -> pd.DataFrame:
    conv = plan.config["report"].get("macs_convention", "paper")
    base = "backbone" if "backbone" in curves else None
    bcost = costs.get(base) if base else None
    bcurve = mean_curve(curves[base]) if base else None
    bscore = float(bcurve[score_column(bcurve)].iloc[0]) if base else None

    def base_value(col):
        return float(bcurve[col].iloc[0]) if base and col in bcurve else None

    display, raw, teachers = [], [], {}
    for method in costeff_methods(plan):
        cost, mc = costs[method], mean_curve(curves[method])
        teacher = teacher_record(plan, method)
        if teacher:
            teachers[teacher["teacher_job"], teacher["teacher"]] = teacher
        tscore = teacher["teacher_score"] if teacher else None
        col = score_column(mc)
        target = plan.method(method).get("slender", {})
        params, enc = cost["params"]["total"], _encoder_params(cost)
        spec = plan.method(method)
        prune = next((st for st in spec["stages"] if st.get("slenderise") is not None), {})
        switches = {"semantics": spec.get("semantics"), "gradient_equilibrium": bool(spec.get("gradient_equilibrium")),
                    "prune_rate": str((prune.get("slenderise") or {}).get("prune_rate", "auto")),
                    "taylor_proportion": (prune.get("slenderise") or {}).get("taylor_proportion", 1.0),
                    "stage_epochs": ", ".join(f"{st['name']} {st['epochs']}" for st in spec["stages"])}
        for _, p in mc.sort_values("param_entropy_threshold", ascending=False).iterrows():
            r = {"method": method, "preset": target.get("preset"), "heads": target.get("heads"),
                 "ffn": target.get("ffn"), "rank": target.get("rank"),
                 "entropy_threshold": float(p["param_entropy_threshold"]), "params": params, "encoder_params": enc,
                 "score": float(p[col]), "metric": metric_name(mc), "layer_speedup": float(p["layer_speedup"]),
                 **switches, **(teacher or {})}
            for key in (f"expected_macs_{conv}", f"expected_macs_{conv}_real", "expected_flops_profiler"):
                if key in p:
                    r[key] = float(p[key])
                    b = base_value(key)
                    r[f"{key}_vs_backbone"] = b / r[key] if b else None
            if bcost:
                r["params_vs_backbone"] = bcost["params"]["total"] / params
                r["encoder_params_vs_backbone"] = _encoder_params(bcost) / enc
            # retention of the teacher's score (COST-EFF's "retaining 96.5 % of fine-tuned BERT"); the backbone
            # row's is kept beside it, since the two differ where the backbone row is trained otherwise
            r["retention"] = r["score"] / tscore if tscore else None
            r["retention_vs_backbone_row"] = r["score"] / bscore if bscore else None
            raw.append(r)
            display.append({
                "Method": titles[method], "Width (h / f / r)": f"{r['heads']} / {r['ffn']} / {r['rank']}",
                "S": f"{r['entropy_threshold']:g}", "#Params (M)": f"{params / 1e6:.2f}",
                "Params ÷": _ratio(r.get("params_vs_backbone")),
                f"MACs (G, {conv})": f"{r.get(f'expected_macs_{conv}', float('nan')) / 1e9:.4f}",
                "MACs ÷": _ratio(r.get(f"expected_macs_{conv}_vs_backbone")),
                "MACs ÷ (real length)": _ratio(r.get(f"expected_macs_{conv}_real_vs_backbone")),
                "FLOPs ÷ (profiler)": _ratio(r.get("expected_flops_profiler_vs_backbone")),
                f"{metric_name(mc)} (%)": f"{r['score'] * 100:.1f}",
                "Retention (%)": f"{r['retention'] * 100:.1f}" if r["retention"] is not None else "—",
                **({"Retention vs backbone row (%)": f"{r['retention_vs_backbone_row'] * 100:.1f}"
                    if r["retention_vs_backbone_row"] is not None else "—"}
                   if teacher and teacher["teacher_job"] != _backbone_job(plan) else {}),
                "Speed-up (×)": f"{r['layer_speedup']:.2f}"})
    notes = [f"Scale: {scale}; mean over seeds {plan.config['seeds']}.",
             "÷ columns: the fine-tuned backbone's value divided by COST-EFF's (the paper's '1/8 parameters', '1/19 "
             "FLOPs'; the backbone row and the teacher share the architecture); retention = COST-EFF's metric / its "
             "teacher's (the fine-tuned model its TA distils from), in %, and where the backbone row is another job, "
             "also / the backbone row's.",
             *(_teacher_note(rec, metric_name(mean_curve(curves[costeff_methods(plan)[0]])))
               for rec in teachers.values()),
             f"MACs: fvcore, {conv} convention, expected per dev sample over the entropy exit rule (exits 1..L−1, then "
             "the final classifier), padded to the run's max length unless 'real length'. FLOPs (profiler): "
             "torch.profiler with_flops on padded inputs, per sample, as COST-EFF's code counts them (attention "
             "matmuls included, 2 FLOPs per MAC). Parameters and costs are counted on the pruned checkpoint.",
             "Width: heads kept per layer / FFN neurons / word-embedding rank (presets: eebench/slender/presets.py; "
             "8x is [INFERRED], not in the official code). Semantics: official code (sbwww/COST-EFF).",
             *([text_batching_note(plan.config)] if plan.config["dataset"]["name"] == "glue" else [])]
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, out_dir / "costeff", "COST-EFF: width presets × entropy thresholds",
                notes)
    pareto_figure(plan, curves, costs, titles, out_dir / "fig_costeff_pareto", scale, conv)
    return raw_df


def _backbone_job(plan) -> str | None:
    """The job that trains the backbone row's last stage (None: the run reports no backbone)."""
    if "backbone" not in plan.methods:
        return None
    return ":".join(plan.stage_owner("backbone", plan.last_stage("backbone")))


def _ratio(value) -> str:
    return f"{value:.2f}×" if value else "—"


def pareto_figure(plan, curves, costs, titles, stem, scale: str, conv: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=150)
    biggest = max(c["params"]["total"] for c in costs.values())
    for method in plan.methods:
        mc = mean_curve(curves[method])
        col, key = score_column(mc), f"expected_macs_{conv}"
        style = method_style(method)
        mc = mc.sort_values(key)
        size = 12 + 140 * costs[method]["params"]["total"] / biggest
        ax.plot(mc[key] / 1e9, mc[col] * 100, color=style["color"], lw=0.8, alpha=0.6)
        ax.scatter(mc[key] / 1e9, mc[col] * 100, s=size, marker=style["marker"], color=style["color"], alpha=0.75,
                   label=f"{titles[method]} ({costs[method]['params']['total'] / 1e6:.1f} M)")
    ax.set_xscale("log")
    name = metric_name(next(iter(curves.values())))
    finish_axes(ax, f"expected MACs per sample (G, {conv}, log)", f"{name} (%)",
                "COST-EFF Pareto view: metric vs MACs (marker area ∝ parameters)", scale, "lower right")
    save_figure(fig, stem)
