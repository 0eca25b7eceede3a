"""Table 1 and Figure 1 of a run: every method's #params, accuracy, expected MACs and speed-up at an operating point,
plus the area under its accuracy–speed-up curve; and the trade-off curves themselves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_path, read_json  # noqa: E402
from .style import method_style  # noqa: E402
from .summary import curve_auc, describe_rule, mean_curve, operating_point, param_columns  # noqa: E402
from .tables import write_table  # noqa: E402


def pm(mean: float, std: float, scale: float = 1.0, digits: int = 2) -> str:
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def load_curves(paths: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    return {m: pd.concat([pd.read_csv(p) for p in files], ignore_index=True) for m, files in paths.items()}


def build_table1(curves: dict[str, pd.DataFrame], costs: dict[str, dict], titles: dict[str, str],
                 report_cfg: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rule = report_cfg["operating_point"]
    lo, hi = report_cfg["auc_speedup_range"]
    conv = report_cfg.get("macs_convention", "paper")
    display, raw = [], []
    for method, per_seed in curves.items():
        mc = mean_curve(per_seed)
        point = operating_point(mc, rule)
        has_exits = len(costs[method]["row_layers"]) > 1
        aucs = pd.Series([curve_auc(g, lo, hi) for _, g in per_seed.groupby("seed")]) if has_exits else None
        setting = ", ".join(f"{c[6:]}={point[c]:g}" for c in param_columns(mc)) if has_exits else "full depth"
        params = costs[method]["params"]["total"]
        display.append({
            "Method": titles[method], "#Params (M)": f"{params / 1e6:.2f}",
            "Accuracy (%)": pm(point["accuracy"], point["accuracy_std"], 100),
            f"MACs (G, {conv})": pm(point[f"expected_macs_{conv}"], point[f"expected_macs_{conv}_std"], 1e-9, 4),
            "Speed-up (×)": pm(point["layer_speedup"], point["layer_speedup_std"]),
            f"AUC@[{lo:g},{hi:g}] (%)": pm(aucs.mean(), aucs.std(ddof=0), 100) if aucs is not None else "—",
            "Operating point": setting})
        raw.append({"method": method, "params": params, "accuracy_mean": point["accuracy"],
                    "accuracy_std": point["accuracy_std"], f"expected_macs_{conv}_mean": point[f"expected_macs_{conv}"],
                    f"expected_macs_{conv}_std": point[f"expected_macs_{conv}_std"],
                    "layer_speedup_mean": point["layer_speedup"], "layer_speedup_std": point["layer_speedup_std"],
                    "head_aware_speedup_mean": point[f"head_aware_speedup_{conv}"],
                    "auc_mean": None if aucs is None else aucs.mean(), "auc_std": None if aucs is None else aucs.std(ddof=0),
                    "operating_point": setting, "seeds": per_seed["seed"].nunique(), "macs_convention": conv})
    return pd.DataFrame(display), pd.DataFrame(raw)


def plot_tradeoff(curves: dict[str, pd.DataFrame], titles: dict[str, str], path: str | Path, scale_note: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    for method, per_seed in curves.items():
        mc = mean_curve(per_seed).sort_values("layer_speedup")
        style = method_style(method)
        if len(mc) == 1:  # no exits: a reference line at the backbone's accuracy
            acc = mc["accuracy"].iloc[0] * 100
            ax.axhline(acc, color=style["color"], ls="--", lw=1.2, label=f"{titles[method]} ({acc:.1f} %)")
            continue
        x, y, e = mc["layer_speedup"], mc["accuracy"] * 100, mc["accuracy_std"] * 100
        ax.plot(x, y, marker=style["marker"], ms=4, lw=1.5, color=style["color"], label=titles[method])
        ax.fill_between(x, y - e, y + e, color=style["color"], alpha=0.15, lw=0)
    ax.set_xlabel("layer-based speed-up (×, LGViT Eq. 17)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"Accuracy vs speed-up — {scale_note}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:])
    plt.close(fig)


def render(config: dict[str, Any], curve_files: dict[str, list[str]], cost_files: dict[str, str], out_dir: str | Path,
           titles: dict[str, str]) -> pd.DataFrame:
    curves = load_curves(curve_files)
    costs = {m: read_json(p) for m, p in cost_files.items()}
    display, raw = build_table1(curves, costs, titles, config["report"])
    out_dir = Path(out_dir)
    note = scale_note(config)
    notes = [f"Scale: {note}.",
             f"Operating point: {describe_rule(config['report']['operating_point'])}.",
             f"AUC: area under the best-accuracy envelope over layer speed-up in "
             f"[{config['report']['auc_speedup_range'][0]:g}, {config['report']['auc_speedup_range'][1]:g}], divided by "
             "the range width (0 where a method cannot reach a speed-up); threshold-free.",
             "MACs: expected per test sample = embedding + executed blocks + every exit head evaluated on the way "
             "(+ final classifier at full depth), counted with fvcore at batch 1 (paper convention: Linear+Conv only).",
             "Speed-up: L / mean executed layers (LGViT Eq. 17), heads not counted. Mean ± std over seeds "
             f"{config['seeds']}."]
    write_table(display, raw, out_dir / "table1", "Table 1: methods compared", notes)
    plot_tradeoff(curves, titles, out_dir / "fig1_tradeoff.png", note)
    return display


def scale_note(config: dict[str, Any]) -> str:
    bb = config["backbone"]
    pre = bb.get("pretrained")
    pre_txt = "random init" if pre is False else ("pretrained " + (pre if isinstance(pre, str) else "(preset weights)"))
    return (f"{config['dataset']['name']}, {bb['name']} ({pre_txt}), {config['training']['epochs']} epochs per stage "
            f"unless overridden, seeds {config['seeds']}")
