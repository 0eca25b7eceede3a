"""Table 1 and Figure 1 of a run: every method's #params, accuracy, expected MACs and speed-up at an operating point,
plus the area under its accuracy–speed-up curve; and the trade-off curves themselves."""
from __future__ import annotations

from typing import Any

import pandas as pd

from .departures import text_notes
from .figures import finish_axes, save_figure
from .retention import reference, retention_columns
from .style import RECONSTRUCTED_MARK, method_style
from .summary import describe_rule, mean_curve, metric_name, pm, score_column, summarize
from .tables import write_table


def table1(curves: dict[str, pd.DataFrame], costs: dict[str, dict], titles: dict[str, str], config: dict[str, Any],
           out_dir, scale: str) -> pd.DataFrame:
    rep = config["report"]
    conv = rep.get("macs_convention", "paper")
    lo, hi = rep["auc_speedup_range"]
    ref = reference(rep, curves, costs)
    display, raw = [], []
    for method, per_seed in curves.items():
        has_exits = len(costs[method]["row_layers"]) > 1
        s = summarize(per_seed, rep, has_exits, method, ref)
        params = costs[method]["params"]["total"]
        name, col = metric_name(per_seed), score_column(per_seed)
        display.append({
            "Method": titles[method], "#Params (M)": f"{params / 1e6:.2f}",
            ("Accuracy" if name == "accuracy" else name) + " (%)": pm(s[f"{col}_mean"], s[f"{col}_std"], 100,
                                                                      seeds=s["seeds"]),
            f"MACs (G, {conv})": pm(s[f"expected_macs_{conv}_mean"], s[f"expected_macs_{conv}_std"], 1e-9, 4,
                                    s["seeds"]),
            **({f"MACs (G, {conv}, real length)": pm(s[f"expected_macs_{conv}_real_mean"],
                                                      s[f"expected_macs_{conv}_real_std"], 1e-9, 4, s["seeds"]),
                "FLOPs (G, full, real length)": pm(s["expected_flops_full_real_mean"], s["expected_flops_full_real_std"],
                                                   1e-9, 4, s["seeds"])}
               if f"expected_macs_{conv}_real_mean" in s else {}),
            "Speed-up (×)": pm(s["layer_speedup_mean"], s["layer_speedup_std"], seeds=s["seeds"]),
            f"AUC@[{lo:g},{hi:g}] (%)": pm(s["auc_mean"], s["auc_std"], 100, seeds=s["seeds"]),
            "Operating point": s["setting"]})
        raw.append({"method": method, "reconstructed": RECONSTRUCTED_MARK in titles[method], "params": params,
                    "macs_convention": conv, **s, **retention_columns(rep, ref)})
    notes = [f"Scale: {scale}.",
             f"Operating point: {describe_rule(rep['operating_point'], ref)}.",
             f"AUC: area under the best-accuracy envelope over layer speed-up in [{lo:g}, {hi:g}], divided by the range "
             "width (0 where a method cannot reach a speed-up); threshold-free.",
             "MACs: expected per test sample = embedding + executed blocks + every exit head evaluated on the way "
             "(+ final classifier at full depth), counted with fvcore at batch 1 (paper convention: Linear+Conv only).",
             f"Speed-up: L / mean executed layers (LGViT Eq. 17), heads not counted. Mean ± std over seeds "
             f"{config['seeds']}.",
             "Semantics: rows titled '(LGViT port)' ran the LGViT port's reading of the baseline (static averaged "
             "losses, strict-> confidence with the final classifier as fallback, patience counting the current exit, "
             "PCEE on raw entropy, no LTE, no SDN τ schedule; spec baselines §9, §11.6); every other baseline row ran "
             "its original code's semantics.",
             "Methods with identical model and training (PABEE and PCEE-BERT: PCEE is an exit rule on PABEE's model) "
             "share one trained model per seed."]
    if any("expected_macs_paper_real_mean" in r for r in raw):
        length = next(iter(costs.values()))["macs_config"].get("sequence", {}).get("padded_length", 128)
        notes.append(f"Text: 'MACs (G, {conv})' pads every sample to {length} tokens (the papers' fixed-length "
                     "convention); 'real length' charges each sample its own token count at the exit it took; FLOPs = "
                     "2 × MACs of the full convention (attention matmuls included), as COST-EFF and ELUE count them.")
    notes += text_notes(config, curves)
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, out_dir / "table1", "Table 1: methods compared", notes)
    plot_tradeoff(curves, titles, out_dir / "fig1_tradeoff", scale)
    return raw_df


def plot_tradeoff(curves: dict[str, pd.DataFrame], titles: dict[str, str], stem, scale: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=150)
    for method, per_seed in curves.items():
        mc = mean_curve(per_seed).sort_values("layer_speedup")
        style = method_style(method)
        col = score_column(mc)
        if len(mc) == 1:  # no exits: a reference line at the backbone's accuracy
            acc = mc[col].iloc[0] * 100
            ax.axhline(acc, color=style["color"], ls="--", lw=1.2, label=f"{titles[method]} ({acc:.1f} %)")
            continue
        x, y, e = mc["layer_speedup"], mc[col] * 100, mc[f"{col}_std"] * 100
        ax.plot(x, y, marker=style["marker"], ms=4, lw=1.5, color=style["color"], label=titles[method])
        ax.fill_between(x, y - e, y + e, color=style["color"], alpha=0.12, lw=0)
    name = metric_name(next(iter(curves.values())))
    finish_axes(ax, "layer-based speed-up (×, LGViT Eq. 17)", "top-1 accuracy (%)" if name == "accuracy" else
                f"{name} (%)", "Figure 1: accuracy vs speed-up" if name == "accuracy" else
                f"Figure 1: {name} vs speed-up",
                scale, "lower left")
    save_figure(fig, stem)
