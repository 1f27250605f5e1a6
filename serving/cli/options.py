"""What every command does with bad input: one way to fail, one date parser and one date-time parser.

Bad input is said on stderr, naming the option, the value and the rule, and exits with code 2
(commands document their other exit codes).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT, *, zh: str | None = None) -> NoReturn:
    """Print ``Error: message`` on stderr and exit (code 2: bad input); given ``zh``, the same in
    Chinese on the line before (``错误：zh``), as people read it first."""
    if zh:
        typer.echo(f"错误：{zh}", err=True)
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=code)


def parse_date(option: str, value: str) -> date:
    """An ISO date given to ``option``, or exit 2 saying the rule."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: not a date (rule: ISO YYYY-MM-DD, e.g. 2026-06-30)")


def parse_datetime(option: str, value: str, *, date_alone: bool = False) -> datetime:
    """An ISO date-time given to ``option`` with its time zone (2026-11-20T21:15:00+08:00), or exit 2
    saying the rule. A time without its zone is refused, never guessed: Beijing time and UTC are eight
    hours apart. With ``date_alone`` (an option that documents it) a bare date is that day's start, UTC."""
    rule = "rule: ISO date-time with its time zone, e.g. 2026-11-20T21:15:00+08:00"
    if date_alone:
        try:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        except ValueError:
            rule += ", or a date YYYY-MM-DD"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: not an ISO date-time ({rule})")
    if when.tzinfo is None:
        fail(f"{option} {value!r}: give the time zone, e.g. +08:00 ({rule})")
    return when
