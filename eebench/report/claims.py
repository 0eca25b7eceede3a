"""The "EEformer claims" table: every method's speed-up at the two retentions EEformer's abstract reports, beside the
abstract's numbers (spec methods §6, §8.3), and the matching section of ``paper_vs_ours.md``.

The abstract's form is "X× speed-up while maintaining R % of the original's performance", so each method is read at
the retention operating point (``eebench.report.summary.operating_point``, rule ``retention``): its highest layer
speed-up whose mean accuracy keeps at least R % of a reference accuracy. R = 99.0 is the CIFAR-100 claim's, R = 98.5
the SST-2 claim's; a run is compared with the claim of the dataset it stands in for. The table reads both references
(``eebench.report.retention``): the backbone row's full-depth accuracy (the abstract's "original model") and each
method's own full depth; ``report.retention_reference`` picks the one the ``speedup_at_R`` columns and
``paper_vs_ours.md`` carry.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .retention import LABELS, Reference, reference
from .style import RECONSTRUCTED_MARK
from .summary import mean_curve, pm, summarize
from .tables import write_table

SOURCE = ("Xu, Hao, Luo, Shen, Hu, Zeng. EEformer. IEEE TMM 2026 — abstract only (backbones, baselines and "
          "protocol not stated; the CIFAR-100 claim is presumably on ViT-B/16, the SST-2 one on BERT-base)")
CLAIMS = [{"dataset": "CIFAR-100", "key": "cifar100", "retention": 99.0, "speedup": 1.87},
          {"dataset": "SST-2", "key": "sst2", "retention": 98.5, "speedup": 3.05}]


def has_claims(methods) -> bool:
    """A run renders the claims table when it runs EEformer."""
    return "eeformer" in methods


def applicable_claim(config: dict[str, Any]) -> dict[str, Any] | None:
    """The claim of the dataset this run stands in for (``report.paper_setting.dataset``, else the dataset's name and
    task: GLUE's SST-2 stands in for the SST-2 claim)."""
    setting = ((config.get("report") or {}).get("paper_setting") or {}).get("dataset", "")
    name = str(config["dataset"].get("name", "")) + " " + str(config["dataset"].get("task", ""))
    for claim in CLAIMS:
        if setting == claim["dataset"] or claim["key"] in name.replace("-", "").replace("_", "").lower():
            return claim
    return None


def at_retention(per_seed: pd.DataFrame, report_cfg: dict[str, Any], retention: float, has_exits: bool,
                 ref: Reference | None = None) -> dict:
    return summarize(per_seed, {**report_cfg, "operating_point": {"rule": "retention", "retention": retention}},
                     has_exits, reference=ref)


def _headers(c: dict, ref: str) -> tuple[str, str]:
    return (f"Speed-up @ {c['retention']:.1f} % of {LABELS[ref]} (×)",
            f"Acc. @ {c['retention']:.1f} % of {LABELS[ref]} (%)")


def claims_table(curves: dict[str, pd.DataFrame], costs: dict[str, dict], titles: dict[str, str],
                 config: dict[str, Any], out_dir, scale: str) -> pd.DataFrame:
    rep = config["report"]
    claim = applicable_claim(config)
    chosen = reference(rep, curves, costs)
    refs = {"backbone": reference(rep, curves, costs, "backbone"), "own": reference(rep, curves, costs, "own")}
    backbone = refs["backbone"]
    # the abstract's numbers are retentions of the original model: the backbone columns
    display = [{"Method": "EEformer †, paper (abstract)", "Full-depth acc. (%)": "—",
                **{k: v for name, ref in refs.items() for c in CLAIMS
                   for k, v in zip(_headers(c, name),
                                   (f"{c['speedup']:.2f} ({c['dataset']})" if name == "backbone" else "—", "—"))}}]
    raw = [{"method": "eeformer_paper", "reconstructed": True, "source": "abstract",
            **{f"speedup_at_{c['retention']:g}": c["speedup"] for c in CLAIMS},
            **{f"speedup_at_{c['retention']:g}_backbone": c["speedup"] for c in CLAIMS}}]
    for method, per_seed in curves.items():
        has_exits = len(costs[method]["row_layers"]) > 1
        mc = mean_curve(per_seed)
        full = mc.loc[mc["layer_speedup"].idxmin()]  # the slowest point: full depth, the reference of 'own'
        seeds = int(per_seed["seed"].nunique())
        row = {"Method": titles[method],
               "Full-depth acc. (%)": pm(full["accuracy"], full["accuracy_std"], 100, seeds=seeds)}
        r = {"method": method, "reconstructed": RECONSTRUCTED_MARK in titles[method],
             "full_depth_accuracy": float(full["accuracy"]),
             "backbone_accuracy": backbone.value(per_seed) if backbone.row is not None else None}
        for name, ref in refs.items():
            for c in CLAIMS:
                x = f"{c['retention']:g}_{name}"
                speed, acc = _headers(c, name)
                if name == "backbone" and ref.row is None:
                    row[speed] = row[acc] = "— (no backbone row)"
                    r.update({f"speedup_at_{x}": None, f"speedup_std_at_{x}": None, f"accuracy_at_{x}": None,
                              f"setting_at_{x}": None})
                    continue
                s = at_retention(per_seed, rep, c["retention"], has_exits, ref)
                row[speed] = pm(s["layer_speedup_mean"], s["layer_speedup_std"], seeds=s["seeds"])
                row[acc] = pm(s["accuracy_mean"], s["accuracy_std"], 100, seeds=s["seeds"])
                r.update({f"speedup_at_{x}": s["layer_speedup_mean"], f"speedup_std_at_{x}": s["layer_speedup_std"],
                          f"accuracy_at_{x}": s["accuracy_mean"], f"setting_at_{x}": s["setting"]})
        for c in CLAIMS:  # the configured reference's, under the names paper_vs_ours.md reads
            x = f"{c['retention']:g}"
            for key in ("speedup_at_", "speedup_std_at_", "accuracy_at_", "setting_at_"):
                r[key + x] = r[f"{key}{x}_{chosen.used}"]
        r["retention_reference"], r["retention_reference_row"] = chosen.used, chosen.row
        display.append(row)
        raw.append(r)
    raw[0]["retention_reference"], raw[0]["retention_reference_row"] = "backbone", None
    notes = [f"Scale: {scale}; seeds {config['seeds']} (mean ± std over seeds). The paper row is the abstract's: "
             f"{SOURCE}.",
             "Retention operating point: each method at its highest layer speed-up (LGViT Eq. 17) whose mean accuracy "
             "keeps at least R % of a reference (the threshold is chosen on the mean curve; '—' where no point keeps "
             "it). Two references, one column pair each: 'of backbone' = the backbone row's full-depth accuracy on "
             "the same seeds (the abstract's \"comparable to the original model\""
             + (f"; here the row '{backbone.row}', its 'Full-depth acc.'" if backbone.row is not None else
                "; this run has no backbone row, so these columns are empty") + "), 'of own full depth' = each "
             "method's own full-depth accuracy (the 'Full-depth acc.' column). The abstract's numbers are retentions "
             "of the original model: they sit in the backbone columns.",
             f"The raw speedup_at_R columns (and paper_vs_ours.md) read R % of {chosen.describe()}.",
             ("This run stands in for the " + claim["dataset"] + f" claim: compare the {claim['retention']:.1f} % "
              "columns with the paper's; the others are shown for reference." if claim else
              "This run stands in for neither claim's dataset: every column is for reference only."),
             "The scales differ by orders of magnitude (a tiny model on a small dataset vs a pre-trained model): "
             "compare methods with each other at this scale, not the values with the paper's."]
    raw_df = pd.DataFrame(raw)
    write_table(pd.DataFrame(display), raw_df, out_dir / "eeformer_claims",
                "EEformer claims: speed-up at 99.0 % and 98.5 % retention", notes)
    return raw_df


def claims_section(plan, tables: dict[str, pd.DataFrame]) -> tuple[list[str], list]:
    """The two claims in ``paper_vs_ours.md``, paper / ours as the LGViT tables there: the abstract's speed-up beside
    EEformer's (†) at the same retention, in the run that stands in for the claim's dataset. → (markdown lines, the
    claims' cells for the CSV)."""
    from .paper_cells import Cell

    claim = applicable_claim(plan.config)
    ours = tables.get("eeformer_claims")
    row = None if ours is None or ours[ours["method"] == "eeformer"].empty else \
        ours[ours["method"] == "eeformer"].iloc[0]
    cells, shown, details = [], [], []
    for c in CLAIMS:
        x = f"{c['retention']:g}"
        cell = Cell("eeformer_claims", {"method": f"eeformer {RECONSTRUCTED_MARK}", "dataset": c["dataset"],
                                        "retention": f"{c['retention']:.1f} %"}, "speedup", c["speedup"])
        cells.append(cell)
        if row is None or claim is not c:
            continue
        of = "the backbone row's" if row["retention_reference"] == "backbone" else "its own full-depth"
        if pd.isna(row["speedup_at_" + x]):
            shown.append(f"| {c['dataset']} | {c['retention']:.1f} % of {of} accuracy | {c['speedup']:.2f} / none |")
            cell.status = f"no operating point keeps {c['retention']:.1f} % of {of} accuracy"
            details.append(f"No operating point of ours keeps {c['retention']:.1f} % of {of} accuracy.")
            continue
        cell.our_row, cell.ours = "eeformer", float(row["speedup_at_" + x])
        cell.ours_std = float(row["speedup_std_at_" + x]) if len(plan.seeds) > 1 else None
        spread = f" ± {cell.ours_std:.2f}" if cell.ours_std is not None else ""
        shown.append(f"| {c['dataset']} | {c['retention']:.1f} % of {of} accuracy | "
                     f"{c['speedup']:.2f} / {cell.ours:.2f}{spread} |")
        base = f", the backbone row's {row['backbone_accuracy'] * 100:.1f} %" if pd.notna(row["backbone_accuracy"]) \
            else ""
        details.append(f"Ours there: accuracy {row['accuracy_at_' + x] * 100:.1f} %{base}, EEformer's full depth "
                       f"{row['full_depth_accuracy'] * 100:.1f} %.")
    lines = ["## EEformer claims (abstract)",
             f"EEformer {RECONSTRUCTED_MARK} is a reconstruction (`reconstructed: true`, spec methods §6); "
             "eeformer_claims.md gives every method's speed-up at these retentions.", ""]
    if shown:
        lines += ["| Dataset | Retention | Speed-up (×) |", "|---|---|---|", *shown, "", *details]
    missing = [cell for cell in cells if cell.ours is None and cell.status is None]
    if missing:
        lines.append(f"{len(missing)} cell{'s' if len(missing) > 1 else ''} not run at this scale: "
                     + ", ".join(f"{cell.key['dataset']} ({cell.key['retention']})" for cell in missing) + ".")
    return lines + [""], cells
