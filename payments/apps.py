from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from payments.schedules import register_payments_schedules
        from payments.vault.keys import keys_in_use
        from payments.vault.schedules import register_vault_schedules
        from security.keyring import refuse_keyring_creation_when

        # A missing keyring file is never created anew over keys the database holds.
        refuse_keyring_creation_when(keys_in_use)
        # Its part of a customer's export, erasure and retention (billing.privacy.registry).
        from payments.privacy import register as register_privacy

        register_privacy()
        # And of the backup restore test: stored cards decrypt (audit.backups.probes).
        from payments.vault.recovery import register as register_backup_probe

        register_backup_probe()

        # A framework event: after migrate, (re)register the key-rotation schedule.
        post_migrate.connect(
            register_vault_schedules, sender=self, dispatch_uid="payments.vault.schedules"
        )
        post_migrate.connect(
            register_payments_schedules, sender=self, dispatch_uid="payments.schedules"
        )
