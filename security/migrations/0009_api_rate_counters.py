from django.db import migrations, models


def _unlogged(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Throttle counters are not worth a WAL flush per API request (security.api.throttling).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE security_apiratecounter SET UNLOGGED")


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0008_api_clients"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiRateCounter",
            fields=[
                ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("window_start", models.BigIntegerField(help_text="Unix time the window began.")),
                ("hits", models.PositiveIntegerField()),
            ],
        ),
        migrations.RunPython(_unlogged, migrations.RunPython.noop),
    ]
