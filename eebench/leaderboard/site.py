"""``leaderboards/index.html``: one static page over every built board, readable offline (inline CSS and script, no
network; the Pareto plots are the boards' own PNGs, linked relative to the page, so the page stays small).

Per board: its protocol (dataset, split, backbone, checkpoint, MAC convention, metric, seeds), its provenance, and
per run a table of its entries — click a header to sort — with the run's Pareto plot. A registered board that is not
built yet is listed with the command that builds it.
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from ..errors import EEBenchError
from ..io import write_text
from .boards import BOARDS_DIR, Board, load_board, registry
from .render import SORT_JS
from .store import STATIC

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>eebench leaderboards</title>
<script>window.__errors=[];
window.addEventListener('error',function(e){{window.__errors.push(String(e.message));}});</script>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:.6em 0}}
th,td{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
th{{background:#f3f3f3}}table.sortable th{{cursor:pointer;user-select:none}}
td:first-child,th:first-child{{text-align:left}}table.protocol td,table.protocol th{{text-align:left}}
.note{{font-size:12px;color:#555}}section.board{{border-top:2px solid #888;margin-top:2em}}
figure{{margin:.5em 0}}figure img{{max-width:640px;border:1px solid #ddd}}
</style></head><body>
<h1>eebench leaderboards</h1>
<p class="note">Reference boards: a config plus its committed results (leaderboards/&lt;board&gt;/). Click a column
header to sort a table. Compare a head against a board with <code>eebench compare --head NAME --board BOARD</code>.</p>
<ul>{toc}</ul>
{sections}
<div id="js-status"></div>
<script>
{sort_js}
(function(){{
  var tables=document.querySelectorAll('table.sortable'),rows=0;
  for(var i=0;i<tables.length;i++){{sortable(tables[i]);rows+=tables[i].tBodies[0].rows.length;}}
  var s=document.getElementById('js-status');
  s.setAttribute('data-tables',String(tables.length));
  s.setAttribute('data-rows',String(rows));
  s.setAttribute('data-errors',JSON.stringify(window.__errors));
}})();
</script>
</body></html>
"""


def _e(v) -> str:
    return html.escape(str(v))


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(f) else f


def _cell(value, text: str | None = None) -> str:
    """A table cell carrying its raw number for sorting (``data-v``; empty where there is none)."""
    num = _num(value)
    shown = text if text is not None else ("—" if num is None else f"{num:g}")
    return f'<td data-v="{"" if num is None else repr(num)}">{_e(shown)}</td>'


def _pct(v, digits=2) -> str:
    n = _num(v)
    return "—" if n is None else f"{n * 100:.{digits}f}"


def _x(v) -> str:
    n = _num(v)
    return "—" if n is None else f"{n:.2f}×"


def entries_table(board: Board, run: str, table_id: str) -> str:
    e = board.entries(run)
    conv = board.config.get("report", {}).get("macs_convention", "paper")
    metric = str(e["metric"].iloc[0]) if len(e) else "metric"
    real = f"expected_macs_{conv}_real_mean" in e and e[f"expected_macs_{conv}_real_mean"].notna().any()
    macs_col = f"expected_macs_{conv}_real_mean" if real else f"expected_macs_{conv}_mean"
    score_col = "score_mean" if "score_mean" in e and metric != "accuracy" else "accuracy_mean"
    head = ["Method", f"{metric} at full depth (%)", f"Area {metric} (%) [95% CI]", "Speed-up @≥99% (×)",
            "Speed-up @≤1 pt (×)", f"{metric} there (%)",
            f"MACs there (G, {conv}{', real length' if real else ''})", "#Params (M)", "Rank"]
    body = []
    for _, r in e.iterrows():
        ci = "" if _num(r.get("area_ci_lo")) is None else f" [{_pct(r['area_ci_lo'])}, {_pct(r['area_ci_hi'])}]"
        macs = _num(r.get(macs_col))
        cells = [f'<td data-v="">{_e(r["title"])}</td>',
                 _cell(r["full_score"], _pct(r["full_score"])),
                 _cell(r.get("area_mean") if r["has_exits"] else None, (_pct(r.get("area_mean")) + ci)
                       if r["has_exits"] else "—"),
                 _cell(r.get("speedup_at_99_mean"), _x(r.get("speedup_at_99_mean"))),
                 _cell(r.get("layer_speedup_mean"), _x(r.get("layer_speedup_mean"))),
                 _cell(r.get(score_col), _pct(r.get(score_col))),
                 _cell(macs, "—" if macs is None else f"{macs / 1e9:.4g}"),
                 _cell(r["params"], f"{r['params'] / 1e6:.2f}"),
                 _cell(r.get("rank"), "ref." if _num(r.get("rank")) is None else f"{int(r['rank'])}")]
        body.append(f'<tr data-method="{_e(r["method"])}">' + "".join(cells) + "</tr>")
    return (f'<table class="sortable" id="{_e(table_id)}"><thead><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>\n" + "\n".join(body)
            + "\n</tbody></table>")


def protocol_table(board: Board) -> str:
    rows = []
    for run in board.cells:
        store = board.store(run)
        swept = store[store["policy"] != STATIC]
        first = swept.iloc[0]
        seeds = ", ".join(str(s) for s in sorted(swept["seed"].unique().tolist()))
        counter = json.loads(first["macs_counter"]) if first["macs_counter"] else {}
        rows.append([run, first["dataset"], first["split"], first["backbone"], first["checkpoint"],
                     f"{first['macs_convention']} ({counter.get('counter', '?')}, batch {counter.get('batch', '?')})",
                     first["metric"], seeds, len(swept["method"].unique())])
    head = ["Run", "Dataset", "Split", "Backbone", "Checkpoint", "MAC convention", "Metric", "Seeds", "Methods"]
    return ('<table class="protocol"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def provenance_items(board: Board) -> list[str]:
    p = board.provenance
    cpu = p.get("cpu") or {}
    flags = cpu.get("flags") or {}
    wall = p.get("wall_time") or {}
    jobs = wall.get("jobs_s") or {}
    lib = p.get("libraries") or {}
    prec = p.get("precision") or {}

    def hours(s):
        return "—" if s is None else (f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min")

    return [
        f"Config: {board.config_file} (sha256 {board.meta.get('config_sha256', '?')[:16]}…), run at commit "
        f"{p.get('git_commit')}.",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in lib.items() if v) + ".",
        f"CPU: {cpu.get('model')} ({cpu.get('logical_cpus')} logical CPUs; "
        + (", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()) or "flags unknown")
        + f"); device {p.get('device')}.",
        "Precision: " + ", ".join(f"{k} {v}" for k, v in prec.items() if v is not None)
        + f"; threads per job {p.get('threads')}.",
        f"Wall time: training epochs {hours(wall.get('train_epochs_s'))}, "
        f"training jobs {hours(wall.get('train_jobs_s'))}"
        + (f", every Snakemake job {hours(jobs.get('total'))} ({jobs.get('jobs')} jobs)" if jobs else "")
        + f" — {wall.get('counted', '')}.",
        f"Built {(p.get('built') or {}).get('at')} with eebench {(p.get('built') or {}).get('eebench')}.",
    ]


def board_section(board: Board, page_dir: Path) -> str:
    parts = [f'<section class="board" id="board-{_e(board.name)}"><h2>{_e(board.title)} '
             f'<span class="note">({_e(board.name)})</span></h2>']
    if board.meta.get("description"):
        parts.append(f"<p>{_e(board.meta['description'])}</p>")
    parts += ["<h3>Protocol</h3>", protocol_table(board), "<h3>Provenance</h3>",
              '<ul class="note">' + "".join(f"<li>{_e(i)}</li>" for i in provenance_items(board)) + "</ul>"]
    if board.meta.get("summary"):
        link = _rel(board.root / board.meta["summary"], page_dir)
        parts.append(f'<p>Methods × tasks: <a href="{link}">{_e(board.meta["summary"])}</a></p>')
    for run, cell in board.cells.items():
        tid = f"t-{board.name}-{cell.name}"
        links = " · ".join(f'<a href="{_rel(cell / f, page_dir)}">{f}</a>'
                           for f in ("leaderboard.html", "table1.md", "table5.md", "fig1_tradeoff.png")
                           if (cell / f).is_file())
        parts += [f"<h3>Run {_e(run)}</h3>", entries_table(board, run, tid)]
        if (cell / "pareto.png").is_file():
            parts.append(f'<figure><img src="{_rel(cell / "pareto.png", page_dir)}" alt="Pareto plot of run '
                         f'{_e(run)}: metric vs expected MACs"><figcaption class="note">Pareto plot: metric vs '
                         f"expected MACs per sample (seed means; dotted: the front).</figcaption></figure>")
        parts.append(f'<p class="note">{links}</p>')
    parts.append(
        '<p class="note">Area: the leaderboard\'s score (the metric envelope over layer speed-up, averaged over the '
        "board's speed-up range) with its bootstrap interval; speed-up @≥99%: the highest speed-up keeping 99 % of "
        "the backbone row's metric; @≤1 pt: the fastest measured point within 1 point of the backbone row's "
        "full-depth metric, with its metric and expected MACs.</p></section>")
    return "\n".join(parts)


def _rel(path: Path, page_dir: Path) -> str:
    return quote(Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix())


def write_site(out: str | Path | None = None, boards: list[Board] | None = None) -> Path:
    """The page over ``boards`` (default: every registered board that is built) at ``out`` (default
    leaderboards/index.html)."""
    out = Path(out) if out is not None else BOARDS_DIR / "index.html"
    unbuilt: list[tuple[str, str]] = []
    if boards is None:
        boards = []
        for name, entry in registry().items():
            try:
                boards.append(load_board(name))
            except EEBenchError:
                unbuilt.append((name, entry["config"]))
    toc = [f'<li><a href="#board-{_e(b.name)}">{_e(b.title)}</a> — {len(b.cells)} run(s), config '
           f"{_e(b.config_file)}</li>" for b in boards]
    toc += [f"<li>{_e(n)} ({_e(c)}): not built yet — <code>eebench board make {_e(n)}</code></li>"
            for n, c in unbuilt]
    page = PAGE.format(toc="".join(toc), sort_js=SORT_JS,
                       sections="\n".join(board_section(b, out.parent) for b in boards))
    write_text(out, page)
    return out
