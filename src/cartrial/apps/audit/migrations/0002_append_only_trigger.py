"""On PostgreSQL, refuse UPDATE and DELETE on audit entries at the database itself.

TRUNCATE is left to the database owner (test databases are flushed with it). On SQLite the
hash chain alone detects tampering: `cartrial audit verify` names the first broken entry.
"""

from django.db import migrations

TRIGGER_NAME = "audit_entry_append_only"

CREATE = f"""
CREATE OR REPLACE FUNCTION audit_entry_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused on audit_auditentry', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {TRIGGER_NAME}
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_refuse_change();
"""

DROP = f"""
DROP TRIGGER IF EXISTS {TRIGGER_NAME} ON audit_auditentry;
DROP FUNCTION IF EXISTS audit_entry_refuse_change();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
