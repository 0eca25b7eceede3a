"""User-facing errors: one line that names the problem and the fix."""


class EEBenchError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with code 2."""


def fail(problem: str, fix: str) -> "EEBenchError":
    return EEBenchError(f"{problem} — {fix}")
