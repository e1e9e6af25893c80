"""Usernames unique whatever their case (a constraint on lower(username), SQLite and PostgreSQL).

Accounts that already differ only by case cannot be merged automatically (each may own
signatures and audit entries): the migration stops and names them, for a person to decide.
"""

import django.db.models.functions.text
from django.db import migrations, models

import cartrial.apps.accounts.models
from cartrial.domain.usernames import case_duplicates


def refuse_case_duplicates(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    duplicates = case_duplicates(User.objects.values_list("username", flat=True))
    if duplicates:
        groups = "; ".join(", ".join(group) for group in duplicates)
        raise RuntimeError(
            f"Accounts whose usernames differ only by case must be merged or renamed first: {groups}."
        )


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.RunPython(refuse_case_duplicates, migrations.RunPython.noop),
        migrations.AlterModelManagers(
            name='user',
            managers=[
                ('objects', cartrial.apps.accounts.models.CaseInsensitiveUserManager()),
            ],
        ),
        migrations.AddConstraint(
            model_name='user',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('username'), name='user_username_unique_any_case'),
        ),
    ]
