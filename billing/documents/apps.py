from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    """Signed PDF invoices: rendering, signing, verification, accountants' downloads."""

    name = "billing.documents"
    label = "documents"
    verbose_name = "Invoice documents"
