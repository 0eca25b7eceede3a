"""The leaderboard's three files: ``leaderboard.md`` (tables + notes), ``leaderboard.csv`` (raw numbers) and
``leaderboard.html`` (one static page: sortable table, Pareto plot as inline SVG, protocol and provenance; it needs
no network)."""
from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pandas as pd

from ..io import write_texts
from .store import PROVENANCE, STATIC


def _num(v, scale=1.0, digits=2, suffix=""):
    return "—" if v is None or pd.isna(v) else f"{v * scale:.{digits}f}{suffix}"


def _pm(row, key, scale=1.0, digits=2, suffix=""):
    m, s = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if m is None or pd.isna(m):
        return "—"
    return _num(m, scale, digits, suffix) + (f" ± {s * scale:.{digits}f}" if row["seeds"] > 1 else "")


def display_table(board: pd.DataFrame, opts: dict, metric: str) -> pd.DataFrame:
    lo, hi = opts["speedup_range"]
    conv = opts["macs_convention"]
    rows = []
    for _, r in board.iterrows():
        ci = "" if r["area_ci_lo"] is None or pd.isna(r["area_ci_lo"]) else \
            f" [{r['area_ci_lo'] * 100:.2f}, {r['area_ci_hi'] * 100:.2f}]"
        d = {"Rank": "ref." if pd.isna(r["rank"]) else str(r["rank"]),
             "Method": r["title"] + (" ★" if r["highlight"] else ""),
             f"Area {metric}@[{lo:g},{hi:g}]× (%) [95% CI]": (_pm(r, "area", 100) + ci) if r["has_exits"] else "—"}
        for s in opts["speedups"]:
            d[f"{metric} @{s:g}× (%)"] = _pm(r, f"at_{s:g}x", 100)
        for q in opts["retention"]:
            d[f"speed-up @≥{q * 100:g}% (×)"] = _pm(r, f"speedup_at_{q * 100:g}")
        d["ELUE gain (pts)"] = _pm(r, "elue", 100)
        d["Pareto"] = f"{'yes' if r['pareto_points'] else 'no'} ({r['pareto_points']}/{r['points']})"
        d["#Params (M)"] = f"{r['params'] / 1e6:.3f}"
        d[f"MACs (G, {conv}) min–full"] = f"{r['min_macs'] / 1e9:.4f}–{r['full_macs'] / 1e9:.4f}"
        rows.append(d)
    return pd.DataFrame(rows)


def pairwise_table(pair: dict, titles: dict) -> pd.DataFrame:
    return pd.DataFrame([{"row − column": titles[a], **{
        titles[b]: "—" if v is None else f"{v['signed'] * 100:+.2f} (+{v['above'] * 100:.2f}/−{v['below'] * 100:.2f})"
        for b, v in cols.items()}} for a, cols in pair.items()])


def protocol_lines(store: pd.DataFrame, opts: dict, res: dict) -> list[str]:
    swept = store[store["policy"] != STATIC]
    first = swept.iloc[0]
    lo, hi = opts["speedup_range"]
    exiting = swept[swept["exit_positions"] != "[]"]
    sweeps = "; ".join(f"{p}: {s}" for p, s in exiting.groupby("policy")["sweep"].first().items())
    exits = "; ".join(f"{m}: {e}" for m, e in swept.groupby("method", sort=False)["exit_positions"].first().items())
    counter = json.loads(first["macs_counter"]) if first["macs_counter"] else {}
    return [
        f"Dataset: {first['dataset']} (split {first['split']}); backbone: {first['backbone']} "
        f"(checkpoint: {first['checkpoint']}); seeds: {sorted(swept['seed'].unique().tolist())}.",
        f"Metric: {first['metric']}; MACs: convention {first['macs_convention']} ({counter.get('counter', '?')}, "
        f"{counter.get('attention', '?')} attention, batch {counter.get('batch', '?')}).",
        f"Exit positions: {exits}.", f"Sweep grids: {sweeps}.",
        "Area: ∫ of the metric envelope (upper Pareto front of a method's points over layer speed-up, joined "
        "linearly, "
        f"0 past its fastest point) over [{lo:g}, {hi:g}]×, divided by {hi - lo:g}; ranked by its mean over seeds. "
        f"95% CI: bootstrap over test samples ({opts['bootstrap']} resamples, seed-mean).",
        f"{first['metric']} @N×: the envelope at that speed-up (— where a method cannot reach it). Speed-up @≥q%: the "
        f"highest speed-up whose envelope keeps q% of {retention_phrase(res['retention_reference'], first['metric'])}.",
        f"ELUE gain: mean of {first['metric']} − R(MACs) over a method's points inside R's MAC range; R = the "
        f"truncated exits of '{res['reference']}' (every sample at exit k) plus the backbone's full-depth point.",
        "Pareto: whether any seed-mean point is on the front of all measured points (metric vs expected MACs), "
        "with how many of its points.",
        "Pairwise: area between envelopes, row minus column, over the speed-up range both reach, per unit speed-up, "
        "in points; (+above/−below) split at the crossings.",
        "Provenance: " + ", ".join(f"{k} {first[k]}" for k in PROVENANCE) + f"; created {first['created']}.",
    ]


def retention_phrase(ref: dict, metric: str) -> str:
    """What the speed-up @ ≥ q % scores were read against (``leaderboard()``'s ``retention_reference``)."""
    if ref["used"] == "backbone":
        return (f"the backbone row's ('{ref['row']}') {metric} on the same seed (report.retention_reference: "
                "backbone, EEformer's 'the original model')")
    if ref["asked"] == "backbone":
        return (f"each method's own full-depth {metric} (its slowest point, same seed): report.retention_reference "
                "asks for the backbone, but this store has no backbone row (a method without exits)")
    return f"each method's own full-depth {metric} (its slowest point, same seed; report.retention_reference: own)"


def pareto_figure(res: dict, opts: dict, titles: dict):
    """The board's Pareto plot (metric vs expected MACs, every method's seed-mean points and the front), as a
    matplotlib figure: inline SVG in leaderboard.html, a PNG in a committed board."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.figures import as_text
    from ..report.style import method_style

    conv = opts["macs_convention"]
    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=100)
    means = res["means"]
    for method, pts in means.groupby("method", sort=False):
        pts = pts.sort_values(f"expected_macs_{conv}")
        st, hl = method_style(method), method in opts["highlight"]
        ax.plot(pts[f"expected_macs_{conv}"] / 1e9, pts["metric_value"] * 100,
                marker="*" if hl else st["marker"] or "o", ms=11 if hl else 4, lw=3 if hl else 1.2,
                color="#e6007e" if hl else st["color"], zorder=3 if hl else 2,
                label=titles[method] + (" (new)" if hl else ""), gid=f"curve-{method}")
    front = means[means["pareto"]].sort_values(f"expected_macs_{conv}")
    ax.step(front[f"expected_macs_{conv}"] / 1e9, front["metric_value"] * 100, where="post", color="grey", ls=":",
            lw=1, label="Pareto front")
    ax.set_xlabel(f"expected MACs per sample (G, {conv} convention)")
    ax.set_ylabel(f"{means.attrs.get('metric', 'metric')} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    as_text(fig)
    fig.tight_layout()
    return fig


def pareto_svg(res: dict, opts: dict, titles: dict) -> str:
    import matplotlib
    import matplotlib.pyplot as plt

    fig = pareto_figure(res, opts, titles)
    buf = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in the page
            fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


# Click a header to sort its table by it (ascending, then descending): a cell's ``data-v`` is its raw number (empty:
# text, sorted by its text, placed last among numbers). Shared by leaderboard.html and the boards' site.
SORT_JS = """function sortable(t){
  var ths=t.tHead.rows[0].cells;
  function key(td){var v=td.getAttribute('data-v');return v===null||v===''?NaN:parseFloat(v);}
  for(var i=0;i<ths.length;i++){(function(c){ths[c].addEventListener('click',function(){
    var asc=ths[c].getAttribute('data-dir')!=='asc';ths[c].setAttribute('data-dir',asc?'asc':'desc');
    var rows=Array.prototype.slice.call(t.tBodies[0].rows);
    rows.sort(function(a,b){var x=key(a.cells[c]),y=key(b.cells[c]);
      if(isNaN(x)&&isNaN(y))return a.cells[c].textContent.localeCompare(b.cells[c].textContent)*(asc?1:-1);
      if(isNaN(x))return 1;if(isNaN(y))return -1;return asc?x-y:y-x;});
    rows.forEach(function(r){t.tBodies[0].appendChild(r);});});})(i);}
}"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>window.__errors=[];
window.addEventListener('error',function(e){{window.__errors.push(String(e.message));}});</script>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
th{{background:#f3f3f3;cursor:pointer;user-select:none}}td:nth-child(2),th:nth-child(2){{text-align:left}}
tr.highlight td{{background:#fff3c4;font-weight:600}}.note{{font-size:12px;color:#555}}
</style></head><body>
<h1>{title}</h1>
<p class="note">Click a column header to sort. ★ = the compared head.</p>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Pareto plot: metric vs expected MACs</h2>
<div id="pareto">{svg}</div>
<h2>Pairwise area between curves</h2>
{pairwise}
<h2>Reported in the paper (not ranked: a different scale)</h2>
{reported}
<h2>Protocol and provenance</h2>
<ul class="note">{notes}</ul>
<div id="js-status"></div>
<script>
{sort_js}
(function(){{
  var t=document.getElementById('leaderboard');
  sortable(t);
  var s=document.getElementById('js-status');
  s.setAttribute('data-rows',String(t.tBodies[0].rows.length));
  s.setAttribute('data-errors',JSON.stringify(window.__errors));
  s.textContent='';
}})();
</script>
</body></html>
"""




def write_leaderboard(res: dict, store: pd.DataFrame, opts: dict, out_dir, run: str) -> None:
    """The three files, rendered in full first and then renamed into place together: a failure while rendering any of
    them leaves the previous board as it was."""
    out_dir = Path(out_dir)
    board = res["board"]
    metric = store[store["policy"] != STATIC]["metric"].iloc[0]
    res["means"].attrs["metric"] = metric
    titles = dict(zip(board["method"], board["title"]))
    disp = display_table(board, opts, metric)
    pair = pairwise_table(res["pairwise"], titles)
    reported = reported_rows_of(opts)
    notes = protocol_lines(store, opts, res)
    md = [f"# Leaderboard: run {run}", "", disp.to_markdown(index=False), "",
          "## Pairwise area between curves (row − column, points)", "", pair.to_markdown(index=False), ""]
    md += ["## Reported in the paper (not ranked: a different scale)", "",
           reported.to_markdown(index=False) if len(reported) else "(no paper setting for this run)", ""]
    md += ["## Protocol and provenance", ""] + [f"- {n}" for n in notes]
    # html: each sortable cell carries its raw number
    raw_cols = ["rank", "title", "area_mean"] + [f"at_{s:g}x_mean" for s in opts["speedups"]] + \
               [f"speedup_at_{q * 100:g}_mean" for q in opts["retention"]] + ["elue_mean", "pareto_points", "params",
                                                                                 "min_macs"]
    body = []
    for (_, d), (_, r) in zip(disp.iterrows(), board.iterrows()):
        cells = []
        for col, raw in zip(disp.columns, raw_cols):
            v = r[raw]
            num = "" if raw == "title" or v is None or pd.isna(v) else repr(float(v))
            cells.append(f'<td data-v="{num}">{html.escape(str(d[col]))}</td>')
        cls = ' class="highlight"' if r["highlight"] else ""
        body.append(f'<tr{cls} data-method="{html.escape(r["method"])}">' + "".join(cells) + "</tr>")
    page = PAGE.format(
        sort_js=SORT_JS, title=html.escape(f"eebench leaderboard — run {run}"),
        head="".join(f"<th>{html.escape(c)}</th>" for c in disp.columns), body="\n".join(body),
        svg=pareto_svg(res, opts, titles), pairwise=pair.to_html(index=False, border=0),
        reported=reported.to_html(index=False, border=0) if len(reported) else "<p>(no paper setting)</p>",
        notes="".join(f"<li>{html.escape(n)}</li>" for n in notes))
    write_texts({out_dir / "leaderboard.csv": board.to_csv(index=False),
                 out_dir / "leaderboard.md": "\n".join(md) + "\n", out_dir / "leaderboard.html": page})


def reported_rows_of(opts: dict) -> pd.DataFrame:
    from .board import reported_rows

    return reported_rows(opts.get("paper_setting"))
