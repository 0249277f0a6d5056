"""Login names stored normalized (NFKC, case-folded, NFKC: security.identity), so that
sign-in looks them up exactly and the lockout counts exactly what can sign in."""

import unicodedata

from django.db import migrations

import security.models


def _normalized(value):
    # A frozen copy of security.identity.normalize_login (migrations never import app code
    # that may change later).
    text = str(value or "").strip()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalize_logins(apps, schema_editor):
    User = apps.get_model("security", "User")
    rows = list(User.objects.values_list("pk", "username", "email"))
    taken = {}
    for pk, username, _email in rows:
        key = _normalized(username)
        if key in taken and taken[key] != pk:
            raise RuntimeError(
                f"accounts {taken[key]} and {pk} have login names that are the same once"
                f" normalized ({key!r}): rename one of them, then migrate again"
            )
        taken[key] = pk
    for pk, username, email in rows:
        changes = {}
        if _normalized(username) != username:
            changes["username"] = _normalized(username)
        if email and _normalized(email) != email:
            changes["email"] = _normalized(email)
        if changes:
            User.objects.filter(pk=pk).update(**changes)


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0003_job_attempts_and_alerts"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("objects", security.models.UserManager()),
            ],
        ),
        migrations.RunPython(normalize_logins, migrations.RunPython.noop),
    ]
