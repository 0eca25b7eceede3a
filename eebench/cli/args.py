"""What the command line's arguments hold, read into values: JSON, integers, and a run's plan from its config."""
from __future__ import annotations

import json

from ..errors import fail


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise fail(f"argument is not valid JSON ({err})", "pass a JSON object") from err


def int_arg(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise fail(f"{option} got {text!r}, not an integer", f"pass {option} as integers separated by commas") from err


def run_plan(args):
    from ..plan import Plan, validate_config

    return Plan(validate_config(json_arg(args.config_json)))
