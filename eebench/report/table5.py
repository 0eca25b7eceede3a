"""Table 5: wall-clock latency at batch 1, each method at its Table 1 operating point, beside the MACs and layer
speed-ups it was expected to buy (spec methods §4.5). The measurements come from ``eebench.measure.wallclock``."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .figures import finish_axes, save_figure
from .style import method_style
from .summary import format_setting
from .tables import write_table


def table5(latency: dict[str, Any], titles: dict[str, str], out_dir, scale: str,
           order: list[str] | None = None) -> pd.DataFrame:
    """``order``: the rows' order (the JSON's keys are sorted)."""
    conv = latency["macs_convention"]
    display, raw = [], []
    for method in order or list(latency["methods"]):
        r = latency["methods"][method]
        ee, bb = r["early_exit"], r["backbone"]
        has_exits = len(r["row_layers"]) > 1
        params = r["policy_spec"].get("params") or {}
        point = format_setting({k: params[k] for k in r.get("swept", params) if k in params})
        display.append({
            "Method": titles.get(method, method),
            f"MACs (G, {conv})": f"{ee['expected_macs'][conv] / 1e9:.4f}",
            "Accuracy (%)": f"{ee['accuracy'] * 100:.2f}" if "accuracy" in ee else "—",
            "Latency (ms/img)": f"{ee['ms_per_image']['mean']:.3f} ± {ee['ms_per_image']['std']:.3f}",
            "Its backbone (ms/img)": f"{bb['ms_per_image']['mean']:.3f} ± {bb['ms_per_image']['std']:.3f}",
            "Wall-clock speed-up (×)": f"{r['wallclock_speedup']:.2f}",
            "MAC speed-up (×)": f"{ee['mac_speedup'][conv]:.2f}",
            "Layer speed-up (×)": f"{ee['layer_speedup']:.2f}",
            "Operating point": point if has_exits else "full depth"})
        raw.append({"method": method, "policy": r["policy"], "setting": point if has_exits else "full depth",
                    "policy_params": json.dumps(params, sort_keys=True), "device": r["device"],
                    "dtype": r["dtype"], "mode": r["mode"], "images": r["protocol"]["images"],
                    "timed_passes": r["protocol"]["timed_passes"], "seeds": 1,
                    "latency_ms": ee["ms_per_image"]["mean"], "latency_std_ms": ee["ms_per_image"]["std"],
                    "backbone_latency_ms": bb["ms_per_image"]["mean"],
                    "backbone_latency_std_ms": bb["ms_per_image"]["std"],
                    "wallclock_speedup": r["wallclock_speedup"], "mac_speedup": ee["mac_speedup"][conv],
                    "layer_speedup_mean": ee["layer_speedup"], "accuracy_mean": ee.get("accuracy"),
                    **{f"expected_macs_{c}_mean": v for c, v in ee["expected_macs"].items()},
                    "macs_convention": conv})
    first = next(iter(latency["methods"].values()))
    proto, prov = first["protocol"], latency.get("provenance", {})
    notes = [f"Scale: {scale}; seed {latency['seed']}'s models.",
             f"Protocol: batch 1, one warm-up pass, then {proto['timed_passes']} timed passes over the first "
             f"{proto['images']} evaluation images; per-image ms of each pass (pass time / images), mean ± std over "
             "passes; the device synchronised around every pass (the paper: 50 passes over CIFAR-100's test set on an "
             "RTX 3090).",
             f"Device: {first['device']} ({prov.get('device', '?')}, {prov.get('threads', '?')} thread(s)), "
             f"{first['dtype']}, {first['mode']} mode (eager = per-exit Python check, as in the paper).",
             "Its backbone: the same weights without exit heads, full depth, timed in the same job right after the "
             "method; wall-clock speed-up = its backbone's ms / the method's ms.",
             f"MAC speed-up: backbone MACs / expected MACs of the timed images ({conv} convention, heads charged); "
             "layer speed-up: Eq. 17. Accuracy and MACs are those of the timed images at the Table 1 operating point.",
             "Batch-1 latency of a small model is dominated by per-layer overhead, not arithmetic: compare the "
             "wall-clock column with the MAC column, and read absolute times only at the scale stated here."]
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, out_dir / "table5", "Table 5: execution time at batch 1", notes)
    plot_wallclock(raw_df, titles, out_dir / "fig5_wallclock", f"{scale}; {first['device']}, {first['mode']}")
    return raw_df


def plot_wallclock(raw: pd.DataFrame, titles: dict[str, str], stem, scale: str) -> None:
    """Where each method's MAC saving went: wall-clock speed-up against MAC speed-up, with the line where every
    saved MAC would show up in milliseconds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=150)
    top = max(1.0, float(raw["mac_speedup"].max()), float(raw["wallclock_speedup"].max())) * 1.08
    ax.plot([0, top], [0, top], color="grey", lw=1, label="real = MAC speed-up")
    ax.plot([0, top], [0, 0.9 * top], color="grey", lw=1, ls=":", label="real = 0.9 × MAC")
    ax.axhline(1.0, color="black", lw=0.6, ls="--")
    for r in raw.itertuples():
        style = method_style(r.method)
        # relative spread of a ratio of two timed means, from their std over passes
        rel = ((r.latency_std_ms / r.latency_ms) ** 2 + (r.backbone_latency_std_ms / r.backbone_latency_ms) ** 2) ** 0.5
        ax.errorbar(r.mac_speedup, r.wallclock_speedup, yerr=rel * r.wallclock_speedup, color=style["color"],
                    marker=style["marker"] or "o", ms=6, capsize=2, ls="none", label=titles.get(r.method, r.method))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    finish_axes(ax, "MAC speed-up (×, heads charged)", "wall-clock speed-up at batch 1 (×, vs its own backbone)",
                "Figure 5: MAC savings vs milliseconds saved", scale, "upper left")
    save_figure(fig, stem)
