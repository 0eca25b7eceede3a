"""The LGViT paper's ablation tables (2, 3, 4, 6, 7) and Figure 4, re-run at the run's scale. Every row is one variant
of the base method (``eebench.ablations``) at the same operating-point rule as Table 1."""
from __future__ import annotations

from typing import Any

import pandas as pd

from .figures import save_figure
from .retention import reference, retention_columns
from .summary import describe_rule, pm, summarize
from .tables import write_table

TITLES = {
    "table2": "Table 2: ablation of the main components (LPH, GAH, two-stage training)",
    "table3": "Table 3: exiting-head architectures under two-stage training",
    "table4": "Table 4: training schemes with LGViT's heads",
    "table6": "Table 6: exiting heads × training schemes",
    "table7": "Table 7: exiting positions",
    "eeformer_ablation": "EEformer ablation: exit heads × fine-tuning scheme (eebench's design; reconstructed)",
}


def ablation_table(name: str, rows: list[dict], curves: dict[str, pd.DataFrame], costs: dict[str, dict],
                   config: dict[str, Any], out_dir, scale: str) -> pd.DataFrame:
    rep = config["report"]
    ref = reference(rep, curves, costs)
    display, raw = [], []
    for row in rows:
        method = row["method"]
        labels = {k: v for k, v in row.items() if k != "method"}
        s = summarize(curves[method], rep, True, method, ref)
        cells = dict(labels)
        if name == "table3":
            cells["#Params (M)"] = f"{costs[method]['params']['total'] / 1e6:.3f}"
            cells["MACs (G, paper)"] = pm(s["expected_macs_paper_mean"], s["expected_macs_paper_std"], 1e-9, 4,
                                          s["seeds"])
        cells["Acc. (%)"] = pm(s["accuracy_mean"], s["accuracy_std"], 100, seeds=s["seeds"])
        cells["Speed-up (×)"] = pm(s["layer_speedup_mean"], s["layer_speedup_std"], seeds=s["seeds"])
        cells["Operating point"] = s["setting"]
        display.append(cells)
        raw.append({"method": method, **labels, "params": costs[method]["params"]["total"], **s,
                    **retention_columns(rep, ref)})
    seeds = sorted({int(x) for r in rows for x in curves[r["method"]]["seed"]})
    notes = [f"Scale: {scale}; seeds {seeds}" + (" (mean ± std over seeds)." if len(seeds) > 1 else
                                                 " (one seed: no spread shown)."),
             f"Operating point: {describe_rule(rep['operating_point'], ref)}.",
             "Heads sit at the base method's exit positions unless the row says otherwise; 'Ours (two-stage)' is "
             "LGViT's stage 1 (alternating, weighted) + stage 2 (self-distillation, frozen backbone)."]
    if name == "eeformer_ablation":
        notes.append("EEformer's own ablation is not public: this grid is eebench's. Progressive = LGViT's two stages "
                     "+ stage 3, joint fine-tuning at a tenth of the learning rate distilled from a frozen copy of "
                     "the stage-2 model (baselines/eeformer.yaml); variants that share stages share their jobs.")
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, out_dir / name, TITLES[name], notes)
    return raw_df


def figure4(rows: list[dict], curves: dict[str, pd.DataFrame], costs: dict[str, dict], config: dict[str, Any], out_dir,
            scale: str):
    import matplotlib.pyplot as plt

    ref = reference(config["report"], curves, costs)
    stats = [(r["Number of exits"], summarize(curves[r["method"]], config["report"], True, r["method"], ref))
             for r in rows]
    n = [k for k, _ in stats]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.2, 3.2), dpi=150)
    ax1.errorbar(n, [_pct(s["accuracy_mean"]) for _, s in stats], [_pct(s["accuracy_std"]) for _, s in stats],
                 marker="o", color="#d62728", capsize=3)
    ax1.set_xlabel("number of exits")
    ax1.set_ylabel("top-1 accuracy (%)")
    ax2.errorbar(n, [_or_nan(s["layer_speedup_mean"]) for _, s in stats],
                 [_or_nan(s["layer_speedup_std"]) for _, s in stats], marker="s", color="#1f77b4", capsize=3)
    ax2.set_xlabel("number of exits")
    ax2.set_ylabel("layer-based speed-up (×)")
    for ax in (ax1, ax2):
        ax.set_xticks(n)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Figure 4: number of exits (LGViT, operating point as Table 1)\n{scale}", fontsize=8)
    save_figure(fig, out_dir / "fig4_num_exits")
    return pd.DataFrame([{"num_exits": k, **s} for k, s in stats])


def _or_nan(value):
    """None (no point keeps a retention rule's floor) as NaN, which the plot leaves out."""
    return float("nan") if value is None else value


def _pct(value):
    return _or_nan(value) * 100
