"""The `cartrial` command line: one entry point, one sub-command group per capability.

Each group lives in its own module of this package and is registered below; a command is
an adapter: it parses input, calls one service, selector or domain function, prints output.
Domain errors become a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cartrial",
    help="cartrial: run a multi-center CAR-T trial (demo, serve, audit, calc, identity, model...).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Attach every command group; imported lazily so `cartrial calc` never loads Django."""
    from cartrial.cli import commands_web

    commands_web.register(app)


def main() -> None:
    """Console-script entry point."""
    _register()
    app()
