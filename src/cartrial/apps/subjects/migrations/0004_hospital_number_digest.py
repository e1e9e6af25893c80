"""A keyed digest of the hospital number per identity, to refuse a second registration at a center."""

import unicodedata

from django.db import migrations, models


def _fill_digests(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.conf import settings

    from cartrial.apps.subjects.identity_crypto import hospital_number_digests, identity_decrypt

    SubjectIdentity = apps.get_model("subjects", "SubjectIdentity")
    rows = list(SubjectIdentity.objects.select_related("subject__center"))
    if not rows or not settings.CARTRIAL_IDENTITY_KEY:
        return
    seen = set()
    for row in rows:
        number = identity_decrypt(row.ciphertext).get("hospital_number", "")
        key = "".join(c for c in unicodedata.normalize("NFKC", number).upper() if c.isalnum())
        digest = hospital_number_digests(row.subject.center.code, key)[0]
        # A duplicate registered before this rule keeps no digest; the first registration keeps it.
        if digest in seen:
            continue
        seen.add(digest)
        row.hospital_number_digest = digest
        row.save(update_fields=["hospital_number_digest"])


class Migration(migrations.Migration):
    dependencies = [("subjects", "0003_drop_fact_columns_now_from_logistics")]

    operations = [
        migrations.AddField(
            model_name="subjectidentity",
            name="hospital_number_digest",
            field=models.CharField(blank=True, db_index=True, max_length=64, null=True),
        ),
        migrations.RunPython(_fill_digests, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="subjectidentity",
            constraint=models.UniqueConstraint(fields=["hospital_number_digest"], name="hospital_number_once_per_center"),
        ),
    ]
