"""A head against a board or a config's run (`compare`), and one board entry re-trained here (`reproduce`)."""
from __future__ import annotations

import argparse

from ..errors import fail


COMPARE_HELP = """\
Train a new exit head and rank it. The head sits at every exit position of the template mlp_normal (after every
block but the last), trained with that recipe's loss and swept with its confidence grid.

  --board B       the board's config fixes the protocol: backbone and checkpoint, data, exits, seeds, training
                  defaults, sweep grids, MAC convention. A run of its own, results/<board run>-vs-<head>[-frozen]/,
                  trains only the head (a run of the board itself is never written to); its store is validated
                  against the board's (another protocol is refused in one line), merged with it and ranked.
  --configfile C  the head joins C's run as one more method; every cached result of the run is reused (the head
                  trains in shares of its own when C has training.jobs), and reports/<run>/leaderboard.* is
                  rebuilt.

Protocols:
  joint   the heads are fine-tuned together with the backbone, from the pretrained weights (one stage).
  frozen  the heads train alone on the backbone fine-tuned under the board's config (its 'backbone' method),
          frozen and without dropout, as DeeBERT's stage 2 trains its off-ramps. A board ships no checkpoints:
          the one your run of the board trained (results/<board run>/train/backbone/) is used when its job spec is
          the board's; otherwise it is trained once into results/<board run>-backbone/ and reused after that.
          The frozen backbone's block outputs are computed once and cached ($EEBENCH_CACHE/features/, default
          ~/.cache/eebench; bf16 under bf16 autocast, ~3.4 GB for sst2-minilm), so the heads train in seconds per
          epoch. Augmented image data (image folders: random crop and flip) runs the backbone every batch instead.

Outputs (--board): reports/<board run>-vs-<head>[-frozen]/ holds leaderboard.md|csv|html (the board with the head
highlighted, unpaired 95 % bootstrap intervals of the area), paired.md|csv (the head's area minus every entry's,
with its 95 % paired bootstrap interval and whether it is significant) and the merged store (store.parquet|csv).

Time, on 2 CPU cores with nothing else running (docs/leaderboard.md has the output): digits 37 s; sst2-minilm
frozen: the backbone's fine-tune once if your run of the board has none (as long as the board's backbone row), the
block outputs once (54 s for the 67,349 phrases on both cores, 3.4 GB), then seconds per epoch: 89 s in all, a later
head on the same backbone 35 s; sst2-minilm joint: one fine-tuning of MiniLM-L6 with exits, 260 s. As ratios to
../shared/bench/calibrate.py (about 5 s there): 7x, 18x, 7x and 50x, against targets of 20x (digits, frozen) and
150x (joint). The comparison's jobs share the cores they are given (one job: every core)."""


COMPARE_EXAMPLES = """\
examples:
  eebench new-head gated && eebench check-head gated --plugin my_heads/gated.py
  eebench compare --head gated --plugin my_heads/gated.py --board sst2-minilm --protocol frozen --cores 2
  eebench compare --head gated --plugin my_heads/gated.py --board glue-minilm --task mrpc
  eebench compare --head gated --plugin my_heads/gated.py --configfile config/tiny.yaml -- -n   # dry run"""


REPRODUCE_HELP = """\
Re-train one board entry in a run of its own, results/<board run>-reproduce-<method>/ (as the board's config trains
it, per task for a grid board; what it starts from too), then print its deltas against the board: the metric at
full depth (its slowest point), the layer speed-up at the board's operating point (report.operating_point) and the
area (scores.area over report.auc_speedup_range), means over seeds. Written to reports/<that run>/reproduce.md|csv.

Both machines are named (the board's provenance and this one's: CPU model and flags, library versions). On the
board's machine and versions the deltas are 0; elsewhere they are not expected to be: CPU kernels, thread counts
and library versions change floating-point sums, and training amplifies them.

Time: that entry's training jobs as the board ran them (e.g. deebert on sst2-minilm: its two stages, ~40 min on 2
cores; on digits: under a minute)."""


def cmd_compare(args) -> None:
    from ..leaderboard.compare import compare, compare_board

    if args.board and args.configfile:
        raise fail("--board and --configfile both given", "compare against a board, or within a config's run")
    if args.task and not args.board:
        raise fail("--task picks a task of a board", "give --board too")
    if args.board:
        rc = compare_board(args.head, args.board, args.protocol, args.scheme, args.policy, args.plugin, args.profile,
                           args.cores, args.snakemake_args, args.task)
    else:
        rc = compare(args.head, args.configfile or "config/default.yaml", args.scheme, args.policy, args.plugin,
                     args.profile, args.cores, args.snakemake_args, args.protocol)
    if rc:
        raise fail(f"snakemake exited with code {rc}", "see its log above (results/<run>/logs/)")


def add_compare(sub) -> None:
    s = sub.add_parser("compare", help="train a new exit head under a board's (or a config's) protocol and rank it "
                                       "against its entries; only the head's own jobs train",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=COMPARE_HELP,
                       epilog=COMPARE_EXAMPLES)
    s.add_argument("--head", required=True, help="the head's registered name (its @register_head)")
    s.add_argument("--board", help="a board: a name from leaderboards/boards.yaml (digits, sst2-minilm, glue-minilm) "
                                   "or a board folder")
    s.add_argument("--configfile", help="instead of --board: add the head to this config's run (default "
                                        "config/default.yaml)")
    s.add_argument("--protocol", choices=["joint", "frozen"], default="joint",
                   help="joint (default): the heads fine-tuned together with the backbone from the pretrained "
                        "weights; frozen: the heads alone, on the fine-tuned backbone held frozen")
    s.add_argument("--task", help="a grid board's one task to compare on (e.g. mrpc of glue-minilm; default: every "
                                  "task; STS-B is a regression, where the template's confidence rule does not apply)")
    s.add_argument("--scheme", help="joint protocol: training scheme (normal, weighted, distillation, alternating, "
                                    "two_stage)")
    s.add_argument("--policy", help="exit policy, with the sweep grid of the baseline recipe that uses it")
    s.add_argument("--plugin", action="append", default=[], help="the head's file (added to the config's plugins)")
    s.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm (instead of --cores)")
    s.add_argument("--cores", default="all", help="snakemake --cores (default all)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to snakemake")
    s.set_defaults(func=cmd_compare)


def cmd_reproduce(args) -> None:
    from ..leaderboard.reproduce import reproduce

    rc = reproduce(args.board, args.method, args.task, args.profile, args.cores, args.snakemake_args)
    if rc:
        raise fail(f"snakemake exited with code {rc}", "see its log above (results/<run>/logs/)")


def add_reproduce(sub) -> None:
    s = sub.add_parser("reproduce", help="re-train one board entry on this machine and print its deltas against the "
                                         "board (metric, speed-up, area)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=REPRODUCE_HELP)
    s.add_argument("--board", required=True, help="a board name (leaderboards/boards.yaml) or a board folder")
    s.add_argument("--method", required=True, help="the board entry (its method name, e.g. deebert)")
    s.add_argument("--task", help="a grid board's task (e.g. mrpc of glue-minilm); required there")
    s.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm (instead of --cores)")
    s.add_argument("--cores", default="all", help="snakemake --cores (default all)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after --: passed to snakemake")
    s.set_defaults(func=cmd_reproduce)
