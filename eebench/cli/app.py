"""Running one command: parse, dispatch, and turn what a user can act on into one line and an exit code."""
from __future__ import annotations

import sys
import warnings

from ..errors import EEBenchError
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:  # parsing inside: an argument's converter (`costs --slender JSON`) refuses bad text with an EEBenchError
        args = _parse(argv)
        args.func(args)
    except EEBenchError as err:
        print(f"eebench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eebench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 — a plugin's own error or a refused write is one line; a bug is not
        line = _one_line(err)
        if line is None:
            raise
        print(f"eebench: error: {line}", file=sys.stderr)
        return 2
    return 0


def _parse(argv: list[str] | None):
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        # `board make NAME --cores 2 -- ARGS`: argparse leaves the words after -- unmatched once an option has come
        # between the two positionals; a command that passes words through to Snakemake takes them
        through = getattr(args, "passthrough", None)
        if through is None or rest[0] != "--":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        setattr(args, through, [*getattr(args, through), *rest[1:]])
    if argv is not None:
        args.argv = list(argv)
    return args


def _one_line(err: Exception) -> str | None:
    """The user's side of an exception that is not an ``EEBenchError``: an error raised by a plugin file's code, or a
    file operation the system refused (full disk, read-only filesystem, no permission) outside the atomic writers,
    where it may be a read as well as a write; None for anything else."""
    import errno

    from ..io import WRITE_FIXES, write_failed
    from ..plugins import plugin_failure

    line = plugin_failure(err)
    if line is None and isinstance(err, OSError) and err.errno in WRITE_FIXES:
        verb = "access" if err.errno in (errno.EACCES, errno.EPERM) else "write"
        line = str(write_failed(err.filename or "a file", err, verb))
    return line
