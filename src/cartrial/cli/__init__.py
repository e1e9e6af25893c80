"""The `cartrial` command line: one entry point, one sub-command group per capability.

Each group lives in its own module of this package, exposes `register(app)`, and is listed
in `_COMMAND_MODULES`. A command is an adapter: it parses input, calls one service, selector
or domain function and prints the result. Domain errors become one line on stderr and exit 2.
Modules that need Django import it inside their commands, so `cartrial calc` stays light.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="cartrial",
    help=(
        "cartrial: run a multi-center CAR-T trial "
        "(demo, serve, audit, calc, identity, model, visits, alerts, plan, simulate, jobs, export, backup, restore, "
        "otp...)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES: tuple[str, ...] = (
    "cartrial.cli.web",
    "cartrial.cli.identity",
    "cartrial.cli.calc",
    "cartrial.cli.model",
    "cartrial.cli.visits",
    "cartrial.cli.endpoints",
    "cartrial.cli.translations",
    "cartrial.cli.alerts",
    "cartrial.cli.plan",
    "cartrial.cli.simulate",
    "cartrial.cli.jobs",
    "cartrial.cli.export",
    "cartrial.cli.usdm",
    "cartrial.cli.odm",
    "cartrial.cli.backup",
    "cartrial.cli.otp",
)


def _register() -> None:
    """Attach every command group listed in `_COMMAND_MODULES`."""
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


def main() -> None:
    """Console-script entry point."""
    _register()
    app()
