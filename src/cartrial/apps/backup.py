"""Back up the trial's whole database to one file and restore it into an empty database.

Why not `dumpdata`/`loaddata`: Django's JSON keeps times to the millisecond (every audit entry's
hash covers its time to the microsecond, so the chain would not verify after a restore), and
`loaddata` reads a JSON file whole. Here the file is written and read a row at a time
(`cartrial.domain.backup_format`), in one consistent snapshot, with every value as stored.

The restore is all or nothing: the rows are loaded in one transaction, every encrypted identity
is decrypted with the configured key(s) and the audit chain is walked before it commits; the
chain must end at the head the backup recorded. A restore writes no audit entry (the head after
it is the head before the backup: that is the proof that nothing was lost or added); it is
logged instead. Backups of an older schema are loaded at their own schema (the migration state
they record), then migrated forward, as an upgrade would.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps as installed_apps
from django.apps.registry import Apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from cartrial.apps import clock
from cartrial.apps.audit.models import AuditChainHead
from cartrial.apps.audit.selectors import audit_verify
from cartrial.apps.subjects.identity_crypto import identity_decrypt
from cartrial.domain.audit_chain import GENESIS_HASH
from cartrial.domain.backup_format import (
    BackupFileInvalid,
    BackupHeader,
    BackupWriter,
    ByteSink,
    Row,
    TableStart,
    read_backup,
    read_header,
)
from cartrial.domain.errors import Refused

logger = logging.getLogger("cartrial.backup")

# Sessions are not kept: they end at a restore (users sign in again), and on a new server with
# another secret key they could not be read anyway.
NOT_BACKED_UP = frozenset({"sessions.Session"})
# Rows `migrate` writes itself into a new database; a restore replaces them with the backup's, so
# every reference to them keeps its id.
MADE_BY_MIGRATE = frozenset({"contenttypes.ContentType", "auth.Permission"})
BOOKKEEPING_TABLES = frozenset({"django_migrations", "django_content_type", "auth_permission"})
IDENTITY_MODEL = "subjects.SubjectIdentity"
BATCH_ROWS = 1000


class BackupRefused(Refused):
    """The backup cannot be made now (the file exists, the database is not up to date)."""

    code = "backup_refused"


class RestoreRefused(Refused):
    """The restore was refused; nothing was loaded."""

    code = "restore_refused"


@dataclass(frozen=True)
class BackupSummary:
    """What one backup holds: for the operator's log, beside the file."""

    path: Path
    tables: int
    rows: int
    audit_sequence: int
    audit_head: str
    file_sha256: str


@dataclass(frozen=True)
class RestoreSummary:
    """What one restore loaded, and the chain it verified."""

    tables: int
    rows: int
    identities: int
    audit_checked: int
    audit_head: str
    migrated_forward: bool


def _models(registry: Apps) -> list[type[models.Model]]:
    """Every table of the schema, in a fixed order (foreign keys are checked at commit, not per row)."""
    found = [
        model
        for model in registry.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy and model._meta.label not in NOT_BACKED_UP
    ]
    return sorted(found, key=lambda model: model._meta.label)


def _columns(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


def _applied_migrations() -> set[tuple[str, str]]:
    if MigrationRecorder.Migration._meta.db_table not in connection.introspection.table_names():
        return set()
    return set(MigrationRecorder(connection).applied_migrations())


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the whole database for the time of the backup, writers unhindered on
    PostgreSQL (repeatable read); on SQLite the transaction holds writers back until it ends."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def database_backup(path: Path) -> BackupSummary:
    """Write every table of the database named by DATABASE_URL to `path` (gzip JSON lines, mode 0600).

    Refuses an existing file (a backup is never overwritten by mistake) and a database whose
    migrations are not all applied (its tables do not match the code that would read them). The
    file appears under its name only once complete: it is written beside it, then renamed.
    """
    if path.exists():
        raise BackupRefused("{path} already exists: choose a new file name.", code="backup_file_exists", path=str(path))
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise BackupRefused(
            "The database is not up to date with this cartrial: run `cartrial migrate` first.",
            code="backup_unmigrated",
        )
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    tables = rows = 0
    try:
        with os.fdopen(descriptor, "wb") as raw, _snapshot():
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as stream:
                header, counts = _write_backup(stream)
            raw.flush()
            os.fsync(raw.fileno())
        tables, rows = len(counts), sum(counts.values())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.info("backup written to %s: %d rows of %d tables, audit head #%d", path, rows, tables, header.audit_sequence)
    return BackupSummary(path, tables, rows, header.audit_sequence, header.audit_head, _file_sha256(path))


def _write_backup(stream: ByteSink) -> tuple[BackupHeader, dict[str, int]]:
    head = AuditChainHead.objects.filter(pk=1).values_list("last_sequence", "last_hash").first()
    header = BackupHeader(
        created_at=clock.now().isoformat(),
        engine=connection.vendor,
        migrations=tuple(sorted(_applied_migrations())),
        audit_sequence=head[0] if head else 0,
        audit_head=head[1] if head else GENESIS_HASH,
    )
    writer = BackupWriter(stream)
    writer.header(header)
    for model in _models(installed_apps):
        columns = _columns(model)
        writer.table(model._meta.label, columns)
        for values in model._base_manager.order_by("pk").values_list(*columns).iterator(chunk_size=2000):
            writer.row(values)
    return header, writer.finish()


# --- restore ----------------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[bytes]:
    """The backup's lines; a file that is not gzip, or whose compressed data is damaged, is refused."""
    try:
        with gzip.open(path, "rb") as stream:
            yield from stream
    except (OSError, EOFError, zlib.error):
        raise BackupFileInvalid(
            "{path} is not a cartrial backup, or its compressed data is damaged.",
            code="backup_not_a_backup",
            path=str(path),
        ) from None


def backup_header_of(path: Path) -> BackupHeader:
    """The backup's header, read before anything is done to the database."""
    if not path.is_file():
        raise BackupFileInvalid("{path} does not exist or is not a file.", code="backup_missing", path=str(path))
    return read_header(_lines(path))


def database_is_empty() -> str | None:
    """None when the database holds no data (tables made by `migrate` alone count as empty), else the
    name of a table that holds rows."""
    names = sorted(set(connection.introspection.table_names()) - BOOKKEEPING_TABLES)
    with connection.cursor() as cursor:
        for name in names:
            # Table names come from the database's own catalogue, quoted.
            cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(name)} LIMIT 1")  # noqa: S608
            if cursor.fetchone() is not None:
                return name
    return None


def _migration_targets(executor: MigrationExecutor, recorded: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The last migration of each app in the backup's recorded state, to migrate the database to it."""
    graph = executor.loader.graph
    unknown = sorted(node for node in recorded if node not in graph.nodes)
    if unknown:
        app, name = unknown[0]
        raise RestoreRefused(
            "This backup was made by a newer cartrial (its migration {migration} is unknown here): restore it "
            "with that version.",
            code="restore_newer_schema",
            migration=f"{app}.{name}",
        )
    ahead = sorted(_applied_migrations() - recorded)
    if ahead:
        app, name = ahead[0]
        raise RestoreRefused(
            "The database is migrated past this backup (migration {migration}): restore into a new, empty database.",
            code="restore_database_ahead",
            migration=f"{app}.{name}",
        )
    targets = []
    for node in recorded:
        later = any(other != node and node in graph.forwards_plan(other) for other in recorded if other[0] == node[0])
        if not later:
            targets.append(node)
    return sorted(targets)


# Columns whose JSON value is already what the database driver takes: no parsing on the way in.
_AS_READ = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "BooleanField",
        "FloatField",
        "CharField",
        "TextField",
    }
)


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    """How a column's backup value becomes the database's: parsed by the field, then prepared for this
    database (a time, a decimal, JSON); None for the types JSON already holds as the driver wants."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if target.get_internal_type() in _AS_READ:
        return None

    def convert(value: Any) -> Any:
        return field.get_db_prep_save(field.to_python(value), connection)

    return convert


class _Loader:
    """Inserts the rows of one table in batches of plain INSERTs (Django's bulk_create spends most of a
    large restore compiling SQL), each value converted by its column's own field."""

    def __init__(self, model: type[models.Model], columns: tuple[str, ...], check: Callable[[dict[str, Any]], None]):
        fields = {field.attname: field for field in model._meta.concrete_fields}
        missing = [column for column in columns if column not in fields]
        if missing:
            raise RestoreRefused(
                "The backup's table {model} has a column {column} that this schema does not: the file does not "
                "match its recorded migrations.",
                code="restore_column_unknown",
                model=model._meta.label,
                column=missing[0],
            )
        chosen = [fields[column] for column in columns]
        quote = connection.ops.quote_name
        names = ", ".join(quote(str(field.column)) for field in chosen)
        # Table and column names come from the schema's models, every value is a parameter.
        self.sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES ({', '.join(['%s'] * len(chosen))})"  # noqa: S608
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, field in enumerate(chosen):
            convert = _converter(field)
            if convert is not None:
                self.converters.append((index, convert))
        self.columns = columns
        self.check = check
        self.batch: list[list[Any]] = []
        self.rows = 0

    def add(self, values: list[Any]) -> None:
        for index, convert in self.converters:
            if values[index] is not None:
                values[index] = convert(values[index])
        self.check(dict(zip(self.columns, values, strict=True)))
        self.batch.append(values)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            with connection.cursor() as cursor:
                cursor.executemany(self.sql, self.batch)
            self.rows += len(self.batch)
            self.batch = []


def _no_check(values: dict[str, Any]) -> None:
    return None


class _IdentityCheck:
    """Each encrypted identity must open with the configured key(s): a restore under the wrong key
    would leave every patient's identity unreadable, so it is refused instead."""

    def __init__(self) -> None:
        self.checked = 0

    def __call__(self, values: dict[str, Any]) -> None:
        if not settings.CARTRIAL_IDENTITY_KEY:
            raise RestoreRefused(
                "CARTRIAL_IDENTITY_KEY is not set, so the backup's identity data cannot be read: set the key(s) in "
                "force when the backup was made.",
                code="restore_identity_key_missing",
            )
        try:
            identity_decrypt(str(values["ciphertext"]))
        except ImproperlyConfigured:
            raise RestoreRefused(
                "The identity data of this backup cannot be decrypted with CARTRIAL_IDENTITY_KEY: set the key(s) "
                "in force when the backup was made.",
                code="restore_identity_key",
            ) from None
        self.checked += 1


def database_restore(path: Path) -> RestoreSummary:
    """Load the backup at `path` into the empty database named by DATABASE_URL, or refuse and load nothing.

    Order: the file's header is read; the database must hold no data; it is migrated to the
    backup's recorded schema; every row is loaded in one transaction, identities decrypted as a
    check, the audit chain walked and compared with the backup's head; then it commits and the
    database is migrated forward to this cartrial's schema (nothing to do for a backup of the same
    version). Any refusal rolls the load back.
    """
    header = backup_header_of(path)
    holder = database_is_empty()
    if holder is not None:
        raise RestoreRefused(
            "The database named by DATABASE_URL is not empty (table {table} holds rows): restore only into an "
            "empty database.",
            code="restore_database_not_empty",
            table=holder,
        )
    recorded = set(header.migrations)
    executor = MigrationExecutor(connection)
    targets = _migration_targets(executor, recorded)
    executor.migrate(targets)
    registry = executor.loader.project_state(targets, at_end=True).apps
    identity_check = _IdentityCheck()
    with transaction.atomic():
        tables, rows = _load(path, registry, identity_check)
        _reset_sequences(registry)
        report = audit_verify()
        if not report.intact:
            assert report.first_break is not None
            raise RestoreRefused(
                "The restored audit trail does not verify at entry #{sequence}: {problem}.",
                code="restore_chain_broken",
                sequence=report.first_break.sequence or 0,
                problem=report.first_break.problem,
            )
        if report.head_hash != header.audit_head or report.checked != header.audit_sequence:
            raise RestoreRefused(
                "The restored audit trail ends at #{checked} ({head}), not at the head the backup recorded "
                "(#{sequence}, {expected}).",
                code="restore_head_mismatch",
                checked=report.checked,
                head=report.head_hash,
                sequence=header.audit_sequence,
                expected=header.audit_head,
            )
    final_plan = MigrationExecutor(connection).migration_plan(executor.loader.graph.leaf_nodes())
    # Forward to this cartrial's schema, as an upgrade; it also records content types of new models.
    call_command("migrate", interactive=False, verbosity=0)
    logger.info("restored %s: %d rows of %d tables, audit head #%d", path, rows, tables, report.checked)
    return RestoreSummary(tables, rows, identity_check.checked, report.checked, report.head_hash, bool(final_plan))


def _load(path: Path, registry: Apps, identity_check: _IdentityCheck) -> tuple[int, int]:
    """Every row of the file into the tables of `registry` (the backup's schema); (tables, rows)."""
    for label in MADE_BY_MIGRATE:
        # Written by `migrate` moments ago and referenced by nothing yet: the backup's rows replace them.
        model = registry.get_model(label)
        model._base_manager.all()._raw_delete(using=connection.alias)
    loader: _Loader | None = None
    tables = rows = 0
    for item in read_backup(_lines(path)):
        if isinstance(item, Row):
            assert loader is not None  # read_backup puts a table before its rows
            loader.add(item.values)
        elif isinstance(item, TableStart):
            if loader is not None:
                loader.flush()
                rows += loader.rows
            try:
                model = registry.get_model(item.model)
            except (LookupError, ValueError):
                raise RestoreRefused(
                    "The backup holds a table {model} that its recorded schema does not: the file does not match its "
                    "recorded migrations.",
                    code="restore_table_unknown",
                    model=item.model,
                ) from None
            loader = _Loader(model, item.columns, identity_check if item.model == IDENTITY_MODEL else _no_check)
            tables += 1
    if loader is not None:
        loader.flush()
        rows += loader.rows
    return tables, rows


def _reset_sequences(registry: Apps) -> None:
    """PostgreSQL's id sequences continue after the restored ids (SQLite follows the largest id itself)."""
    statements = connection.ops.sequence_reset_sql(no_style(), _models(registry))
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
