"""The parser: the root options, then each command as its module adds it, in the order `eebench --help` lists them."""
from __future__ import annotations

import argparse

from . import board, compare, costs, curves, export, heads, latency, listing, plan, report, smoke, store, train

DESCRIPTION = """The eebench command line: one subcommand per DAG step, plus tools for people (list, costs, plan).

Run ``snakemake --cores all`` to regenerate a whole run; the subcommands below are what its jobs call, and each can
be run by hand. Errors a user can act on end in one line (``eebench: error: …``) and exit code 2.
"""
COMMANDS = (
    listing.add_list, costs.add_costs, plan.add_plan, smoke.add_smoke, train.add_train, train.add_train_group,
    curves.add_evaluate, costs.add_measure_costs, curves.add_curve, costs.add_run_costs, curves.add_run_curves,
    latency.add_run_latency, report.add_report, store.add_run_store, store.add_leaderboard, store.add_merge,
    store.add_validate, heads.add_new_head, heads.add_check_head, compare.add_compare, compare.add_reproduce,
    board.add_board, report.add_report_glue, latency.add_latency, export.add_export,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eebench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from .. import __version__

    p.add_argument("--version", action="version", version=f"eebench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return p
