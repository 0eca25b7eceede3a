"""`eebench smoke`: a config's whole DAG at miniature scale."""
from __future__ import annotations

import argparse
import sys

from ..errors import fail


def cmd_smoke(args) -> None:
    """The whole config at miniature scale through the real DAG: ``snakemake --configfile C --config smoke=true``."""
    import subprocess
    from pathlib import Path

    from ..plan import expand_grid, load_config

    _own_options(args)
    repo = Path(__file__).resolve().parents[2]  # eebench/cli/smoke.py → the repository
    config = load_config(args.config)  # a bad path or config is one line before Snakemake starts
    expand_grid({**config, "smoke": True})
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--configfile",
           str(Path(args.config).resolve()), "--config", "smoke=true", "--cores", str(args.cores),
           *(["-d", args.directory] if args.directory else []), *args.snakemake_args]
    print("running: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc:
        raise fail(f"the smoke run of {args.config} failed (snakemake exit code {rc})",
                   "read the failing job's log named above; the same job fails in the full-scale run")


def _own_options(args) -> None:
    """`smoke C --cores 1 -n`: the remainder after C swallows smoke's own options, which would then reach Snakemake
    beside smoke's default (`--cores 2 ... --cores 1`). Take them back from the words before a `--`; every word after
    it is Snakemake's."""
    rest = list(args.snakemake_args)
    cut = rest.index("--") if "--" in rest else len(rest)
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--cores")
    own.add_argument("-d", "--directory")
    mine, others = own.parse_known_args(rest[:cut])
    args.cores = mine.cores or args.cores
    args.directory = mine.directory or args.directory
    args.snakemake_args = [*others, *rest[cut + 1:]]


def add_smoke(sub) -> None:
    s = sub.add_parser("smoke", help="run a config's whole DAG at miniature scale (tiny models, local fixtures, "
                                     "1 epoch): every table, in minutes on a CPU")
    s.add_argument("config", help="a config file, e.g. config/paper.yaml")
    s.add_argument("--cores", default="2", help="snakemake --cores (default 2)")
    s.add_argument("-d", "--directory", help="snakemake working directory (default: the current one)")
    s.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="further snakemake arguments, e.g. -n or a target")
    s.set_defaults(func=cmd_smoke)
