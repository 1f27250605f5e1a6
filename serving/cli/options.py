"""What every command does with bad input: one way to fail and one date parser.

Bad input is said on stderr, naming the option, the value and the rule, and exits with code 2
(commands document their other exit codes).
"""

from __future__ import annotations

from datetime import date
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``Error: message`` on stderr and exit (code 2: bad input)."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=code)


def parse_date(option: str, value: str) -> date:
    """An ISO date given to ``option``, or exit 2 saying the rule."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: not a date (rule: ISO YYYY-MM-DD, e.g. 2026-06-30)")
