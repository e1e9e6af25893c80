"""On PostgreSQL, refuse TRUNCATE of the audit entries as well (a statement-level trigger).

TRUNCATE does not fire the row triggers of 0002, so it emptied the trail silently; `cartrial
audit verify` also finds it (an empty table under a chain head that records entries). The
database owner can still disable the trigger deliberately (ALTER TABLE ... DISABLE TRIGGER); the
test database does so, because Django flushes tables with TRUNCATE between transactional tests.
On SQLite there is no TRUNCATE: the chain and its head detect a deletion.
"""

from django.db import migrations

TRIGGER_NAME = "audit_entry_no_truncate"

# Reuses the function of 0002, which raises naming the operation (TG_OP = 'TRUNCATE').
CREATE = f"""
CREATE TRIGGER {TRIGGER_NAME}
    BEFORE TRUNCATE ON audit_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_refuse_change();
"""

DROP = f"DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON audit_auditentry;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]
    operations = [migrations.RunPython(forwards, backwards)]
