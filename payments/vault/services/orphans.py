"""Orphan card secrets erased: a secret whose payment method is missing or deleted.

A card's secret is written before its method and erased after the method is marked
deleted (``payments.vault.secret_store``), on the vault's own connection: a process that
dies in between, or a caller's transaction that rolls back after ``tokenize``, leaves a
secret no card refers to. The hourly key job erases those older than
VAULT_ORPHAN_SECRET_MINUTES (younger ones may belong to a tokenize in progress).
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import record
from payments.vault.models import PaymentMethod
from payments.vault.secret_store import erase_secrets, secret_tokens_before
from security.actors import Actor


def purge_orphan_secrets(*, by: Actor, batch: int = 1000) -> int:
    """Erase the secrets older than VAULT_ORPHAN_SECRET_MINUTES whose payment method is
    missing or deleted; audited (``vault.orphan_secrets_erased``) when any were."""
    cutoff = timezone.now() - datetime.timedelta(minutes=settings.VAULT_ORPHAN_SECRET_MINUTES)
    erased = 0
    after = ""
    while tokens := secret_tokens_before(cutoff, after=after, limit=batch):
        after = tokens[-1]
        live = set(
            PaymentMethod.objects.filter(
                token__in=tokens, status=PaymentMethod.Status.ACTIVE
            ).values_list("token", flat=True)
        )
        orphans = [token for token in tokens if token not in live]
        if orphans:
            erased += erase_secrets(orphans, before=cutoff)
    if erased:
        with transaction.atomic():
            record("vault.orphan_secrets_erased", actor=by, records=erased)
    return erased
