"""The two default numbering series: F (invoices) and K (credit notes)."""

from django.db import migrations


def create_default_series(apps, schema_editor):
    InvoiceSeries = apps.get_model("billing", "InvoiceSeries")
    for code, kind, name in (("F", "invoice", "Invoices"), ("K", "credit_note", "Credit notes")):
        if not InvoiceSeries.objects.filter(kind=kind, is_default=True).exists():
            InvoiceSeries.objects.get_or_create(
                code=code, defaults={"kind": kind, "name": name, "is_default": True}
            )


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_freeze_finalized_invoices")]

    operations = [migrations.RunPython(create_default_series, migrations.RunPython.noop)]
