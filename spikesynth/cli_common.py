"""What every subcommand of the command line shares: how a user error is said (one line on
stderr, no traceback) and the exit status it gives."""

from __future__ import annotations

import sys

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Say a user error and give the exit status ``code``."""
    print(f"spikesynth: error: {message}", file=sys.stderr)
    return code


def warn(message: str) -> None:
    print(f"spikesynth: warning: {message}", file=sys.stderr)


def say(message) -> None:
    """Progress for the user, on stderr (stdout carries the results)."""
    print(message, file=sys.stderr)
