"""A compared head ranked against a board: its run's store validated against the board's (one protocol, one sweep
grid per policy), merged with it, the board rendered with the head highlighted, and a paired table of the head's area
difference against every board entry.

The rendered board keeps its unpaired interval per entry (the bootstrap of the seed-mean area over layer speed-up,
``eebench.leaderboard.board``): the board's own entries take theirs from the board's committed ``leaderboard.csv``
(the same resampling, computed when the board was built), the head's is computed from its run's logit caches. The
paired table (``eebench.leaderboard.paired``) resamples the test samples once for both methods of a pair and scores
accuracy over MAC speed-up (the plain backbone's MACs ÷ the mean MACs per sample, under the board's convention), so
the interval of a difference is much narrower than two unpaired intervals suggest: the samples both methods find
hard are the same samples. Per-sample correctness exists for classification only: a regression task (STS-B) gets
no paired table, and a board ranked by another metric (MCC, F1) is paired on accuracy."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

PAIRED_BOOT = 1000  # resamples of the paired interval (the percentile interval's ends settle by ~1,000)


def rank_against_board(board, board_run: str, plan, head: str, protocol: str) -> dict:
    """Validate, merge, render and pair one run of the comparison against the board's run ``board_run``; print
    the paired table and where everything went. Returns the paired rows and the output folder."""
    from ..plan import store_path
    from .board import leaderboard, options
    from .render import write_leaderboard
    from .store import merge, read_store, validate, write_store

    new = read_store(store_path(plan.run))
    ref = board.store(board_run)
    # another protocol is refused here, in one line naming the field that differs
    validate(new, reference=ref, name=f"the store of run {plan.run}")
    merged = merge([ref, new])
    out = Path("reports") / plan.run
    write_store(merged, out / "store.parquet", out / "store.csv")
    opts = options(plan.config, highlight=[head])
    from .samples import run_samples

    swept = merged[merged["policy"] != "static_exit"]
    metric = swept["metric"].iloc[0]
    # the unpaired interval resamples per-sample correctness of the ranked metric: accuracy only (as a board's own)
    samples = head_samples(plan, head) if metric == "accuracy" and opts["bootstrap"] else None
    res = leaderboard(merged, opts, samples)
    keep_board_intervals(res["board"], cell_folder(board, board_run), head)
    title = f"{board.name} board ({board_run}) + {head} ({protocol})"
    write_leaderboard(res, merged, opts, out, title)
    mine, theirs = run_samples(plan), board.samples(board_run)
    pairable = mine.has_correct and theirs.has_correct
    rows = paired_rows(mine, theirs, head, merged, opts) if pairable else []
    write_paired(rows, out, head, metric, opts, pairable)
    print_summary(res["board"], rows, head, out, pairable, metric)
    return {"paired": rows, "out": out}


def cell_folder(board, run: str) -> Path | None:
    """A board run's folder (``Board.cells``: a path, or one relative to the board's folder)."""
    cell = board.cells.get(run)
    if cell is None:
        return None
    return Path(cell) if Path(cell).is_dir() else Path(board.root) / cell


def head_samples(plan, head: str) -> dict:
    """The head's per-sample replays of its sweep, per seed (the unpaired interval's input)."""
    from ..evaluate import load_cache
    from .board import per_sample

    return {head: {s: per_sample(load_cache(plan.final_logits(head, s)), plan.method(head)["policy"])
                   for s in plan.seeds}}


def keep_board_intervals(table: pd.DataFrame, cell: Path | None, head: str) -> None:
    """The board entries' unpaired intervals as the board computed them (its committed ``leaderboard.csv``)."""
    csv = cell / "leaderboard.csv" if cell is not None else None
    if csv is None or not csv.is_file():
        return
    committed = pd.read_csv(csv).set_index("method")
    for i, method in table["method"].items():
        if method != head and method in committed.index:
            for col in ("area_ci_lo", "area_ci_hi"):
                if col in committed:
                    table.loc[i, col] = committed.loc[method, col]


def paired_rows(mine, theirs, head: str, merged: pd.DataFrame, opts: dict) -> list[dict]:
    """The head's area minus every board entry's, per seed, with the paired bootstrap interval (``mine``,
    ``theirs``: the per-sample records of the comparison's run and of the board's)."""
    from .paired import paired_area

    lo, hi = opts["speedup_range"]
    swept = merged[merged["policy"] != "static_exit"]
    rows = []
    for method, grp in swept[swept["method"] != head].groupby("method", sort=False):
        if grp["exit_positions"].iloc[0] == "[]":
            continue  # no exits: one point at full depth, no area to pair (the board ranks it as the reference)
        for seed, pts in grp.groupby("seed"):
            own = swept[(swept["method"] == head) & (swept["seed"] == seed)]
            if own.empty:
                continue
            res = paired_area([mine.entry(r) for _, r in own.iterrows()],
                              [theirs.entry(r) for _, r in pts.iterrows()], lo, hi, n_boot=PAIRED_BOOT, seed=0,
                              convention=opts["macs_convention"])
            rows.append({"entry": method, "title": pts["title"].iloc[0], "seed": int(seed),
                         "diff": float(res["diff"]), "ci_low": float(res["ci_low"]), "ci_high": float(res["ci_high"]),
                         "significant": bool(res["significant"])})
    return rows


def write_paired(rows: list[dict], out: Path, head: str, metric: str, opts: dict, pairable: bool) -> None:
    from ..io import write_texts

    lo, hi = opts["speedup_range"]
    table = pd.DataFrame(rows, columns=["entry", "title", "seed", "diff", "ci_low", "ci_high", "significant"])
    note = (f"Area difference {head} − entry, in points: the area under each method's accuracy envelope over MAC "
            f"speed-up (the plain backbone's MACs ÷ the mean MACs per sample, {opts['macs_convention']} convention) "
            f"on [{lo:g}, {hi:g}]× (scores.area), with its 95 % paired bootstrap interval: {PAIRED_BOOT} resamples of "
            "the test samples, both methods' points recomputed on the same resample; significant = 0 outside the "
            "interval. Per seed (the head and the entry trained with the same seed). Entries without exits have no "
            "area and are left out. The board itself ranks the area over layer speed-up (leaderboard.md).")
    if metric != "accuracy":
        note += f" The board ranks by {metric}; what pairs is per-sample correctness, so this table is on accuracy."
    if not pairable:
        note = (f"No paired table: this task is a regression ({metric}), whose samples have no correctness to pair "
                "(the paired bootstrap resamples per-sample correct/incorrect records).")
    shown = table.assign(**{"Δ area (pts)": (table["diff"] * 100).map("{:+.2f}".format),
                            "95% CI": [f"[{a * 100:+.2f}, {b * 100:+.2f}]" for a, b in zip(table["ci_low"],
                                                                                      table["ci_high"])],
                            "significant": table["significant"].map({True: "yes", False: "no"})})
    md = "\n".join([f"# {head} against every board entry (paired)", "", note, ""]
                   + ([shown[["title", "seed", "Δ area (pts)", "95% CI", "significant"]].to_markdown(index=False, disable_numparse=True)]
                      if len(table) else []))
    write_texts({out / "paired.md": md + "\n", out / "paired.csv": table.to_csv(index=False)})


def print_summary(table: pd.DataFrame, rows: list[dict], head: str, out: Path, pairable: bool, metric: str) -> None:
    r = table[table["method"] == head].iloc[0]
    ci = "" if pd.isna(r["area_ci_lo"]) else f" [{r['area_ci_lo'] * 100:.2f}, {r['area_ci_hi'] * 100:.2f}]"
    ranked = table[table["rank"].notna()]
    print(f"{head}: rank {r['rank']} of {len(ranked)}, area {r['area_mean'] * 100:.2f}{ci} (unpaired 95 % CI)",
          flush=True)
    if pairable and rows:
        print(f"{head} − entry, area of accuracy over MAC speed-up in points, 95 % paired bootstrap CI "
              f"({PAIRED_BOOT} resamples):")
        width = max(len(x["title"]) for x in rows)
        for x in rows:
            print(f"  {x['title']:<{width}}  seed {x['seed']}  {x['diff'] * 100:+7.2f}  "
                  f"[{x['ci_low'] * 100:+.2f}, {x['ci_high'] * 100:+.2f}]  "
                  f"{'significant' if x['significant'] else 'not significant'}", flush=True)
    elif not pairable:
        print(f"no paired table: a regression task ({metric}) has no per-sample correctness to pair")
    print(f"wrote {out}/leaderboard.md, leaderboard.csv, leaderboard.html (the board with {head} highlighted), "
          f"{out}/paired.md, paired.csv, and the merged store {out}/store.parquet (+ .csv)", flush=True)

