"""Two-factor sign-in from the server: reset a person's second factor (a lost phone), and the
current code of the demo's published authenticator key.

The reset is a sponsor administrator's act, done by an operator on the server (like `token
revoke`); it is audited with its reason, and the person enrols again at the next sign-in.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach `cartrial otp ...`."""
    otp_app = typer.Typer(help="Two-factor sign-in: reset a second factor, the demo's codes.", no_args_is_help=True)
    app.add_typer(otp_app, name="otp")

    @otp_app.command("reset")
    def otp_reset(
        username: str = typer.Argument(..., help="The person whose authenticator and recovery codes are removed."),
        reason: str = typer.Option(..., help="Why (audited): e.g. 'phone lost, identity checked by phone call'."),
    ) -> None:
        """Remove USERNAME's authenticator and recovery codes: they enrol again at the next sign-in."""
        from cartrial.cli.web import _django, _fail

        _django()
        from cartrial.apps.accounts.two_factor import device_reset
        from cartrial.apps.audit.services import Actor
        from cartrial.domain.errors import DomainError

        try:
            user = device_reset(actor=Actor.system("cli"), username=username, reason=reason)
        except DomainError as refusal:
            _fail(str(refusal))
        typer.echo(f"The second factor of {user.username} is reset: they enrol again at the next sign-in.")

    @otp_app.command("demo-code")
    def otp_demo_code() -> None:
        """Print the code the demo's authenticator key gives now (the demo's logins; refused in production)."""
        import time

        from cartrial.config.known_secrets import DEMO_TOTP_KEY
        from cartrial.domain.totp import totp_code

        typer.echo(totp_code(bytes.fromhex(DEMO_TOTP_KEY), time.time()))
