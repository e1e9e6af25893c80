"""An end to a membership, the suspension of a person, an expiry on every API token.

Tokens created before expiries existed get the longest lifetime from their creation
(`domain.access_terms.TOKEN_DAYS_MAX`): those older than that stop working at once, as a new
token of that age would.
"""

from datetime import timedelta

from django.db import migrations, models

# domain.access_terms.TOKEN_DAYS_MAX when this migration was written (a migration keeps its values).
TOKEN_DAYS_MAX = 365


def _expiry_for_existing_tokens(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.filter(expires_at__isnull=True).only("pk", "created_at"):
        ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at + timedelta(days=TOKEN_DAYS_MAX))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_signature_void"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="suspended_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="suspension_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="membership",
            name="ends_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="Access ends at this instant (the midnight after its last day at the center)",
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(null=True, help_text="Refused from this instant on, like a revoked token"),
        ),
        migrations.RunPython(_expiry_for_existing_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(help_text="Refused from this instant on, like a revoked token"),
        ),
    ]
