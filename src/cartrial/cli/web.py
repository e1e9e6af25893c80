"""Commands that need the database: demo, serve, migrate, setup, audit verify, token, keygen, protocol.

Every command uses the database named by DATABASE_URL (default: an SQLite file
`cartrial.sqlite3` in the working directory).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from cartrial.config.known_secrets import DEMO_IDENTITY_KEY_FILE as DEMO_KEY_FILE
from cartrial.config.known_secrets import DEMO_SECRET_KEY_FILE as DEMO_SECRET_FILE


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _ensure_identity_key(generate: bool) -> None:
    """Use CARTRIAL_IDENTITY_KEY, else the demo key file in the working directory (made if asked)."""
    if os.environ.get("CARTRIAL_IDENTITY_KEY"):
        return
    key_file = Path.cwd() / DEMO_KEY_FILE
    if key_file.exists():
        os.environ["CARTRIAL_IDENTITY_KEY"] = key_file.read_text().strip()
        return
    if generate:
        from cryptography.fernet import Fernet

        key_file.write_text(Fernet.generate_key().decode() + "\n")
        key_file.chmod(0o600)
        os.environ["CARTRIAL_IDENTITY_KEY"] = key_file.read_text().strip()
        typer.echo(f"Generated a demo identity key in {key_file} (set CARTRIAL_IDENTITY_KEY in production).")


def _ensure_secret_key(generate: bool) -> None:
    """Use CARTRIAL_SECRET_KEY, else the demo's secret file in the working directory (made if asked).

    The settings refuse to start without a key; the demo makes a random one per machine, kept
    private beside its identity key, so that `cartrial demo` then `cartrial serve` work on a
    fresh clone and no key is ever shipped with the code.
    """
    if os.environ.get("CARTRIAL_SECRET_KEY", "").strip():
        return
    key_file = Path.cwd() / DEMO_SECRET_FILE
    if key_file.exists():
        os.environ["CARTRIAL_SECRET_KEY"] = key_file.read_text().strip()
        return
    if generate:
        import secrets

        key_file.touch(mode=0o600)
        key_file.chmod(0o600)
        key_file.write_text(secrets.token_urlsafe(50) + "\n")
        os.environ["CARTRIAL_SECRET_KEY"] = key_file.read_text().strip()
        typer.echo(f"Generated a demo secret key in {key_file} (set CARTRIAL_SECRET_KEY in production).")


def _django(generate_key: bool = False) -> None:
    """Configure Django (validates the protocol file: a broken one stops here with its reason)."""
    _ensure_identity_key(generate_key)
    _ensure_secret_key(generate_key)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cartrial.config.settings")
    import django
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    if apps.ready:
        return  # already set up (commands run in-process by the tests): logging stays as configured
    try:
        django.setup()
    except ImproperlyConfigured as error:
        _fail(f"cartrial cannot start: {error}")


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _start_jobs_worker(wanted: bool | None) -> None:
    """Start `cartrial jobs worker` beside the server: by default on SQLite only (the demo), where
    nobody runs a worker service; production on PostgreSQL runs it as its own service (docs/jobs.md).

    It inherits the environment (keys, DATABASE_URL) and the terminal's process group, so Ctrl-C
    stops it with the server (it finishes the job in hand first).
    """
    import subprocess

    from django.db import connection

    if not (connection.vendor == "sqlite" if wanted is None else wanted):
        return
    cartrial = Path(sys.executable).with_name("cartrial")
    # Fixed argv, no shell.
    subprocess.Popen([str(cartrial), "jobs", "worker"])  # noqa: S603
    typer.echo("A worker for long jobs runs beside the server (cartrial jobs worker).")


def gunicorn_argv(host: str, port: int) -> list[str]:
    """gunicorn's command line: the settings of `cartrial.config.gunicorn`, the address given here."""
    return [
        "gunicorn",
        "cartrial.config.wsgi",
        "--config",
        "python:cartrial.config.gunicorn",
        "--bind",
        f"{host}:{port}",
    ]


def _serve(host: str, port: int, jobs_worker: bool | None = None) -> None:
    """Run gunicorn (`cartrial.config.gunicorn`) serving the app and its static files, and the jobs' worker."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    _start_jobs_worker(jobs_worker)
    typer.echo(f"cartrial is serving on http://{host}:{port}/  (Ctrl-C to stop)")
    args = gunicorn_argv(host, port)
    # Simulated once in the master before the workers fork (the reference cohorts of the model).
    os.environ["CARTRIAL_WARM_CACHES"] = "1"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(str(gunicorn), args)  # noqa: S606 (fixed argv, no shell: the server replaces this process)


def _demo_two_factor(users: dict[str, Any]) -> None:
    """Enrol the demo's logins whose role requires two-factor sign-in with the demo's published key."""
    from cartrial.apps.accounts import two_factor
    from cartrial.config.known_secrets import DEMO_TOTP_KEY

    if not two_factor.enforced():
        return
    for user in users.values():
        if two_factor.required_for(user):
            two_factor.demo_enrol(user, DEMO_TOTP_KEY)


def _demo_two_factor_note() -> None:
    """How a demo user gets the codes of the second factor."""
    from cartrial.apps.accounts import two_factor

    if not two_factor.enforced():
        typer.echo("Two-factor sign-in is off (CARTRIAL_TWO_FACTOR_REQUIRED=0).")
        return
    from cartrial.config.known_secrets import DEMO_TOTP_KEY

    key = two_factor.secret_for_typing_key(DEMO_TOTP_KEY)
    typer.echo(
        "Two-factor sign-in: the investigators, pharmacists, the lab and the sponsor's logins give a code after "
        f"the password. Add the demo's key to an authenticator app ({key}) or print the current code with "
        "`cartrial otp demo-code`. The coordinators and the apheresis unit may enrol from their 'Second factor' "
        "page."
    )


_WORKER_HELP = "Run the long jobs' worker beside the server (default: on SQLite only)."


def _demo_database(*, reset: bool) -> None:
    """The demo's database, migrated (with --reset, the SQLite file is deleted first); Django set up
    with a generated key and alert e-mails printed on the console."""
    url = os.environ.get("DATABASE_URL", "")
    sqlite_file = Path.cwd() / "cartrial.sqlite3" if not url else None
    if reset and sqlite_file is not None and sqlite_file.exists():
        sqlite_file.unlink()
    # Settings read this before Django starts.
    os.environ.setdefault("CARTRIAL_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    _django(generate_key=True)
    _migrate()


def _demo_scale(subjects: int, *, reset: bool) -> None:
    """`cartrial demo --scale N`: the synthetic study of N subjects, built in bulk with a progress bar."""
    import time

    _demo_database(reset=reset)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cartrial.config.known_secrets import DEMO_PASSWORD
    from cartrial.domain.errors import DomainError
    from cartrial.protocols import active_protocol
    from cartrial.scale import build_scale

    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task("Building the synthetic study", total=subjects)
        step = max(subjects // 20, 1)
        told = [0]

        def tell(done: int, total: int) -> None:
            progress.update(task, completed=done)
            # Without a terminal (a log, a CI job) the bar is not drawn: a line every 5 %.
            if not progress.console.is_terminal and (done - told[0] >= step or done == total):
                told[0] = done
                typer.echo(f"  {done}/{total} subjects ({time.perf_counter() - started:.0f} s)")

        try:
            report = build_scale(active_protocol(), subjects, progress=tell)
        except DomainError as error:
            _fail(f"error: {error} [{error.code}]")
    elapsed = time.perf_counter() - started
    typer.echo(f"Synthetic study of {report.subjects} subjects built in {elapsed:.1f} s.")
    for label, count in sorted(report.rows.items()):
        typer.echo(f"  {label:<36} {count:>10}")
    typer.echo(f"API token for bdx.coordinator: {report.api_token}")
    typer.echo(f"Demo logins: the users of `cartrial demo` (password for all: {DEMO_PASSWORD}).")
    typer.echo(f"head {report.head_hash}")


def register(app: typer.Typer) -> None:
    """Attach the database-backed commands."""
    audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
    token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
    protocol_app = typer.Typer(help="The protocol file.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")
    app.add_typer(token_app, name="token")
    app.add_typer(protocol_app, name="protocol")

    @app.command()
    def demo(
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the web server after building."),
        host: str = typer.Option("127.0.0.1", help="Address to serve on."),
        port: int = typer.Option(8000, help="Port to serve on."),
        reset: bool = typer.Option(False, help="Delete and rebuild the demo data (SQLite file only)."),
        worker: bool | None = typer.Option(None, "--worker/--no-worker", help=_WORKER_HELP),
        scale: int = typer.Option(
            0,
            "--scale",
            min=0,
            help="Build a synthetic study of N subjects in bulk (benchmarks, load tests) into an empty database.",
        ),
    ) -> None:
        """Build the demo trial (centers, users, patients at every stage) and serve it."""
        if os.environ.get("CARTRIAL_HTTPS", "0") == "1" and os.environ.get("CARTRIAL_DEBUG", "0") != "1":
            _fail(
                "cartrial demo refuses production settings (CARTRIAL_HTTPS=1): its users share a published "
                "password. Build the demo on a machine of its own, without CARTRIAL_HTTPS."
            )
        if scale:
            _demo_scale(scale, reset=reset)
            if serve:
                _serve(host, port, worker)
            return
        _demo_database(reset=reset)
        from cartrial.apps.trial.models import Center
        from cartrial.config.known_secrets import DEMO_PASSWORD
        from cartrial.demo import USERS, build_demo
        from cartrial.protocols import active_protocol

        if Center.objects.exists():
            typer.echo("The demo database already exists (use --reset to rebuild it).")
        else:
            from django.core import mail
            from django.test.utils import override_settings
            from rich.progress import Progress, SpinnerColumn, TextColumn

            # The alerts the demo's story raises are kept, not printed: the console shows the e-mails
            # of the alerts raised while the demo is used.
            with (
                Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress,
                override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
            ):
                mail.outbox = []
                progress.add_task("Building the demo trial through the real services…", total=None)
                world = build_demo(active_protocol())
                built_mails = len(mail.outbox)
            typer.echo(f"Demo built. API token for bdx.coordinator: {world.api_token}")
            _demo_two_factor(world.users)
            typer.echo(
                f"{built_mails} alert e-mails were sent while building it (not shown); those of alerts raised "
                "from now on are printed here."
            )
        typer.echo("")
        typer.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, first, last, roles in USERS:
            where = ", ".join(f"{center} {role.value}" for center, role in roles)
            typer.echo(f"  {username:<20} {first} {last:<12} {where}")
        _demo_two_factor_note()
        if serve:
            _serve(host, port, worker)

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to serve on."),
        port: int = typer.Option(8000, help="Port to serve on."),
        worker: bool | None = typer.Option(None, "--worker/--no-worker", help=_WORKER_HELP),
    ) -> None:
        """Migrate the database and serve the web app (and, on SQLite, run the long jobs' worker)."""
        _django()
        _migrate()
        _serve(host, port, worker)

    @app.command()
    def migrate() -> None:
        """Create or update the database tables."""
        _django()
        _migrate()
        typer.echo("Database up to date.")

    @app.command()
    def keygen(
        secret: bool = typer.Option(False, "--secret", help="Print a Django secret key for CARTRIAL_SECRET_KEY."),
    ) -> None:
        """Print a new key for CARTRIAL_IDENTITY_KEY (encryption of identity data at rest), or --secret."""
        if secret:
            import secrets

            typer.echo(secrets.token_urlsafe(50))
            return
        from cryptography.fernet import Fernet

        typer.echo(Fernet.generate_key().decode())

    @audit_app.command("verify")
    def audit_verify() -> None:
        """Walk the hash chain; exit 0 when intact (last line: `head <hash>`), 1 naming the first broken entry.

        The head's hash, kept outside the database (a log, a monitor's report), later shows that
        the trail was not cut back and re-headed.
        """
        _django()
        from cartrial.apps.audit.selectors import audit_verify as verify

        report = verify()
        if report.intact:
            typer.echo(f"Audit trail intact: {report.checked} entries verified.")
            typer.echo(f"head {report.head_hash}")
            return
        assert report.first_break is not None
        where = "the chain head" if report.first_break.sequence is None else f"entry #{report.first_break.sequence}"
        typer.echo(
            f"Audit trail BROKEN at {where}: {report.first_break.problem} "
            f"({report.checked} entries verified before it).",
            err=True,
        )
        raise typer.Exit(1)

    @token_app.command("create")
    def token_create(
        username: str,
        label: str = typer.Option("cli", help="What the token is for."),
        days: int = typer.Option(None, help="How many days it is valid (default 90, at most 365)."),
    ) -> None:
        """Create an API token for USERNAME and print it once; it expires after `--days` days."""
        _django()
        from cartrial.apps.accounts.models import User
        from cartrial.apps.accounts.services import api_token_create
        from cartrial.apps.audit.services import Actor
        from cartrial.domain.errors import DomainError

        user = User.objects.filter(username__iexact=username, is_active=True).first()
        if user is None:
            _fail(f"No active user '{username}'.")
        try:
            token = api_token_create(actor=Actor.system("cli"), user=user, label=label, days=days)
        except DomainError as error:
            _fail(f"error: {error} [{error.code}]")
        typer.echo(token)

    @token_app.command("list")
    def token_list(username: str = typer.Argument(None, help="Only this user's tokens.")) -> None:
        """List API tokens (id, prefix, user, label, created, last used, expiry, state); the tokens
        themselves are never stored."""
        _django()
        from cartrial.apps import clock
        from cartrial.apps.accounts.models import ApiToken

        now = clock.now()
        rows = ApiToken.objects.select_related("user").order_by("pk")
        if username:
            rows = rows.filter(user__username__iexact=username)
        for row in rows:
            used = row.last_used_at.isoformat(timespec="minutes") if row.last_used_at else "never"
            if row.revoked:
                state = "revoked"
            elif row.expires_at <= now:
                state = "expired"
            elif not row.user.is_active:
                state = "owner suspended"
            else:
                state = "active"
            typer.echo(
                f"{row.pk:>5}  {row.prefix}…  {row.user.username:<20} {row.label:<20} "
                f"created {row.created_at.isoformat(timespec='minutes')}  used {used}  "
                f"expires {row.expires_at.isoformat(timespec='minutes')}  {state}"
            )

    @token_app.command("revoke")
    def token_revoke(
        token: str = typer.Argument(..., help="The token's id (`cartrial token list`) or the whole token."),
    ) -> None:
        """Revoke an API token: the next request presenting it is refused (audited)."""
        _django()
        from cartrial.apps.accounts.services import api_token_revoke
        from cartrial.apps.audit.services import Actor
        from cartrial.domain.errors import DomainError

        try:
            row = api_token_revoke(actor=Actor.system("cli"), token=token)
        except DomainError as error:
            _fail(f"error: {error} [{error.code}]")
        typer.echo(f"API token {row.pk} ({row.prefix}…) of {row.user.username} revoked.")

    @protocol_app.command("check")
    def protocol_check(path: Path = typer.Argument(None, help="Protocol YAML (default: the one in force).")) -> None:
        """Validate a protocol file; exit 2 naming the key and the problem."""
        from cartrial.protocols import DEFAULT_PROTOCOL_FILE, ProtocolError, load_protocol

        try:
            protocol = load_protocol(path or DEFAULT_PROTOCOL_FILE)
        except ProtocolError as error:
            _fail(str(error))
        typer.echo(
            f"{protocol.path}: {protocol.code} v{protocol.version} is valid "
            f"({len(protocol.criteria)} criteria, {len(protocol.visits)} visits, {len(protocol.products)} products)."
        )
