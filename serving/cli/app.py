"""The one Typer application; stage modules add their commands to it."""

import typer

app = typer.Typer(
    name="tiers",
    help="tiered-supervision: credit records → profiles → grades → double-random inspections.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
