"""`eebench board`: the reference boards (list, make, build, site)."""
from __future__ import annotations

import argparse

from ..errors import fail


BOARD_HELP = """Reference boards: a config plus its committed results under leaderboards/<board>/ (registry:
leaderboards/boards.yaml). Run these from the repository root, where the configs' data paths resolve.

  eebench board list                         the registered boards, their configs, whether built
  eebench board make NAME [--cores N | --profile P] [-- SNAKEMAKE ARGS]
                                             run the board's config through Snakemake here, then build the board
                                             and the site: one command regenerates a board (from scratch where
                                             nothing is cached; `-- --forceall` retrains everything)
  eebench board build NAME [--configfile C] [--results-root R] [--out DIR]
                                             build the board from a finished run (results/ and reports/ under R)
  eebench board site [--out leaderboards/index.html] [--board DIR ...]
                                             the static offline page over every built board
"""


def cmd_board_list(args) -> None:
    from ..leaderboard.boards import describe, registry

    for name, entry in registry().items():
        print(describe(name, entry))


def cmd_board_make(args) -> None:
    from ..leaderboard.boards import make_board
    from ..leaderboard.site import write_site

    rc = make_board(args.name, args.cores, args.profile, args.snakemake_args)
    if rc:
        raise fail(f"snakemake exited with code {rc}",
                   "see its log above (results/<run>/logs/); the board was not built")
    print(f"site: {write_site()}")


def cmd_board_build(args) -> None:
    from ..leaderboard.boards import BOARDS_DIR, build_board
    from ..leaderboard.site import write_site

    board = build_board(args.name, args.configfile, args.results_root, args.out)
    if args.out is None and (BOARDS_DIR / "boards.yaml").is_file():
        print(f"site: {write_site()}")
    print(f"board {board.name}: runs {', '.join(board.cells)}")


def cmd_board_site(args) -> None:
    from ..leaderboard.boards import load_board
    from ..leaderboard.site import write_site

    boards = [load_board(b) for b in args.board] if args.board else None
    print(f"wrote {write_site(args.out, boards)}")


def add_board(sub) -> None:
    s = sub.add_parser("board", help="reference boards: list, make (run + build), build (from a finished run), site",
                       description=BOARD_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    bsub = s.add_subparsers(dest="board_command", required=True, metavar="BOARD_COMMAND")
    b = bsub.add_parser("list", help="the registered boards, their configs and whether each is built")
    b.set_defaults(func=cmd_board_list)
    b = bsub.add_parser(
        "make", help="run a board's config through Snakemake, then build the board and the site",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Regenerate a board with one command: `python -m snakemake -s Snakefile --cores N --configfile "
                    "<the board's config>` in the current folder (run it from the repository root; every cached "
                    "result is reused, a fresh clone trains everything), then `eebench board build NAME` and "
                    "`eebench board site`.",
        epilog="examples:\n  eebench board make sst2-minilm --cores 2\n"
               "  eebench board make glue-minilm --profile profiles/slurm\n"
               "  eebench board make digits --cores all -- --forceall   # retrain every job")
    b.add_argument("name", help="a board of leaderboards/boards.yaml")
    how = b.add_mutually_exclusive_group()
    how.add_argument("--cores", default="all", help="Snakemake --cores (default: all)")
    how.add_argument("--profile", help="a Snakemake profile, e.g. profiles/slurm")
    b.add_argument("snakemake_args", nargs="*", metavar="-- SNAKEMAKE_ARGS", help="after --: passed to snakemake")
    b.set_defaults(func=cmd_board_make, passthrough="snakemake_args")
    b = bsub.add_parser("build", help="build a board from the finished run(s) of its config")
    b.add_argument("name", help="the board's name (a registered one, or any name with --configfile and --out)")
    b.add_argument("--configfile", help="the config that was run (default: the registry's)")
    b.add_argument("--results-root", default=".", help="the folder holding the run's results/ and reports/")
    b.add_argument("--out", help="the board folder to write (default: leaderboards/NAME, and the site is rewritten)")
    b.set_defaults(func=cmd_board_build)
    b = bsub.add_parser("site", help="the static offline page over every built board")
    b.add_argument("--out", help="default: leaderboards/index.html")
    b.add_argument("--board", action="append", default=[], help="a board name or folder (default: every built one)")
    b.set_defaults(func=cmd_board_site)
