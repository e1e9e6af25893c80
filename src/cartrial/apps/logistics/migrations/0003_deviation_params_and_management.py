"""Deviations say what happened as a code and its parameters (any language), and are managed."""

from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("logistics", "0002_deviation_message_fr"),
    ]

    operations = [
        migrations.RemoveField(model_name="deviation", name="message_fr"),
        migrations.AddField(model_name="deviation", name="params", field=models.JSONField(blank=True, default=dict)),
        migrations.AddField(
            model_name="deviation", name="status", field=models.CharField(db_index=True, default="open", max_length=16)
        ),
        migrations.AddField(model_name="deviation", name="acknowledged_at", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(
            model_name="deviation",
            name="acknowledged_by",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.user"
            ),
        ),
        migrations.AddField(model_name="deviation", name="closed_at", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(
            model_name="deviation",
            name="closed_by",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.user"
            ),
        ),
        migrations.AddField(model_name="deviation", name="closing_reason", field=models.TextField(blank=True)),
        migrations.CreateModel(
            name="DeviationComment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.TextField()),
                ("role", models.CharField(max_length=32)),
                ("move", models.CharField(help_text="acknowledge, comment, close or reopen", max_length=16)),
                ("at", models.DateTimeField()),
                (
                    "author",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.user"),
                ),
                (
                    "deviation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="comments", to="logistics.deviation"
                    ),
                ),
            ],
            options={"ordering": ["at", "pk"]},
        ),
    ]
