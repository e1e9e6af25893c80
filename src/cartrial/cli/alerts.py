"""`cartrial alerts scan`: the daily scan for alerts no write raises (overdue visits, SAE reports
pending or overdue).

Run once a day by cron (docs/alerts.md), e.g. `15 6 * * * cd /srv/cartrial && cartrial alerts scan`.
Idempotent: an overdue visit already alerted and not yet acknowledged is not alerted again, and each
stage of an SAE clock (a report due, then overdue) is alerted once, so a second run the same day (or
a run after a missed day) raises only what is new. `--today` runs the scan as of another day (a
catch-up, a test). E-mails go out after the scan's commit.

Why here: the scan composes the casebook (visits) and the safety app (SAE clocks), both above the
alerts app, which imports neither; the interface layer may call them all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the `alerts` group to the `cartrial` application."""
    alerts_app = typer.Typer(
        name="alerts", help="Alerts: the daily scan (overdue visits, SAE reports).", no_args_is_help=True
    )
    alerts_app.command("scan")(scan_command)
    app.add_typer(alerts_app, name="alerts")


def scan_command(
    today: Annotated[
        str | None, typer.Option("--today", help="Scan as of this day (YYYY-MM-DD); default: now.")
    ] = None,
) -> None:
    """Raise an alert for every overdue visit and every SAE report pending or overdue not already
    alerted, and propose new dates for the booked subjects of late shipments; print how many."""
    from cartrial.cli.web import _django, _fail

    try:
        day = date.fromisoformat(today) if today else None
    except ValueError:
        _fail(f"error: --today {today!r} is not a date (YYYY-MM-DD) [invalid_date]")
    _django()
    from django.db import transaction

    from cartrial.apps import clock
    from cartrial.apps.audit.services import Actor
    from cartrial.apps.casebook.services import overdue_visit_alerts_raise
    from cartrial.apps.planning.replanning import late_shipments_replan
    from cartrial.apps.safety.services import sae_clock_alerts_raise
    from cartrial.apps.trial.protocol import protocol_in_force

    # Noon UTC of the given day is that calendar day at every center of the trial (UTC-11 to UTC+11).
    now = datetime.combine(day, time(12), tzinfo=UTC) if day else clock.now()
    actor = Actor.system("alerts-scan", now=now)
    protocol = protocol_in_force()
    with transaction.atomic():
        visits = overdue_visit_alerts_raise(actor=actor, protocol=protocol)
        reports = sae_clock_alerts_raise(actor=actor, protocol=protocol)
        proposals = late_shipments_replan(actor=actor, protocol=protocol)
    typer.echo(f"{len(visits)} overdue-visit alert(s) raised")
    typer.echo(f"{len(reports)} SAE-clock alert(s) raised")
    typer.echo(f"{len(proposals)} re-planning proposal(s) for late shipments")
