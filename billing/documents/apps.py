from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    """Signed PDF invoices: rendering, signing, verification, accountants' downloads."""

    name = "billing.documents"
    label = "documents"
    verbose_name = "Invoice documents"

    def ready(self) -> None:
        # Its part of the backup restore test (audit.backups.probes).
        from billing.documents.backup_probes import register

        register()
