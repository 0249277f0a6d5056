"""Vault tables: data keys, card-entry key pairs, payment methods, card secrets.

Key material never appears here in the clear: a DataKey holds its AES key only
wrapped by a KEK (security.keyring, outside the database); an EntryKey holds its
RSA private key wrapped the same way. A PaymentMethod holds only what may be shown:
brand, BIN, last 4, expiry and a keyed fingerprint. The card number is an
AES-256-GCM blob (payments.vault.crypto) in CardSecret, a table of its own that only
the vault's database role may read (db.routers, docs/vault.md "The vault role"). The
CVC has no column anywhere.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from payments.vault.cards import Brand


class DataKey(models.Model):
    """A data-encryption key (DEK). Active: encrypts; decrypt-only; destroyed: bytes erased."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DECRYPT_ONLY = "decrypt_only", "Decrypt only"
        DESTROYED = "destroyed", "Destroyed"

    # Random 32-bit id written into every ciphertext header (payments.vault.crypto).
    id = models.PositiveBigIntegerField(primary_key=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.ACTIVE)
    kek_version = models.PositiveIntegerField()
    wrapped_key = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "data key"
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="active"),
                name="payments_datakey_one_active",
            ),
            models.CheckConstraint(
                condition=(Q(state="destroyed") & Q(wrapped_key__isnull=True))
                | (~Q(state="destroyed") & Q(wrapped_key__isnull=False)),
                name="payments_datakey_destroyed_has_no_key",
            ),
        ]
        permissions = [("view_key_status", "Can view the vault key status page")]

    def __str__(self) -> str:
        return f"DEK {self.id:08x} ({self.state})"

    @property
    def hex_id(self) -> str:
        return f"{self.id:08x}"

    def encrypts_until(self) -> datetime.datetime:
        """End of the cryptoperiod: after it the key never encrypts again."""
        return self.created_at + datetime.timedelta(hours=settings.VAULT_DEK_ROTATION_HOURS)

    def wrap_context(self) -> bytes:
        """Associated data binding the wrapped bytes to this key id."""
        return b"tillit.vault.dek|" + self.id.to_bytes(4, "big")


class EntryKey(models.Model):
    """An RSA-OAEP-256 key pair for browser card entry; the private half is KEK-wrapped."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PREVIOUS = "previous", "Previous (grace period)"
        EXPIRED = "expired", "Expired"

    kid = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    public_key_der = models.BinaryField(editable=False)
    kek_version = models.PositiveIntegerField()
    wrapped_private_key = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "card-entry key"
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=Q(state="active"),
                name="payments_entrykey_one_active",
            ),
            models.CheckConstraint(
                condition=(Q(state="expired") & Q(wrapped_private_key__isnull=True))
                | (~Q(state="expired") & Q(wrapped_private_key__isnull=False)),
                name="payments_entrykey_expired_has_no_key",
            ),
        ]

    def __str__(self) -> str:
        return f"entry key {self.kid} ({self.state})"

    def wrap_context(self) -> bytes:
        return b"tillit.vault.entry|" + self.kid.encode("ascii")


class PaymentMethod(models.Model):
    """A tokenized card. Only brand, BIN, last 4, expiry and the fingerprint are in clear."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DELETED = "deleted", "Deleted (ciphertext erased)"

    # Unique and indexed through Meta (no second LIKE index: tokens and fingerprints are
    # looked up whole, and every index costs each tokenize; docs/decisions.md 18).
    token = models.CharField(max_length=64, editable=False)
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, related_name="payment_methods"
    )
    brand = models.CharField(max_length=12, choices=Brand.choices)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    fingerprint = models.CharField(max_length=64)
    # The first six digits (the issuer's BIN), which PCI DSS 3.4.1 allows in clear beside the
    # last four: the fraud features read the card's country from it. "" for cards tokenized
    # before it was kept.
    bin = models.CharField(max_length=6, blank=True, default="", editable=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # The customer asked to keep the card (saving needs a second factor: docs/payments.md).
    # False: tokenized for one payment only, never listed or offered as a saved card, and
    # erased once that payment is final.
    saved = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "payment method"
        indexes = [models.Index(fields=["fingerprint"], name="payments_pm_fingerprint_idx")]
        constraints = [
            models.UniqueConstraint(fields=["token"], name="payments_pm_token_uniq"),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1) & Q(exp_month__lte=12),
                name="payments_paymentmethod_exp_month_range",
            ),
        ]
        permissions = [
            (
                "reveal_card",
                "Can reveal a full card number (payment-processing service account only)",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_brand_display()} •••• {self.last4}"

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    @property
    def fingerprint_prefix(self) -> str:
        return self.fingerprint[:12]


class CardSecret(models.Model):
    """A card number sealed under a data key: the vault's one table of cardholder secrets.

    Read and written only through the vault's database alias (``db.routers``): with
    VAULT_DATABASE_URL set, a second connection as the vault role, while the web
    application's role has no privilege on this table (the migrations revoke it). Keyed
    by the payment method's token (which the ciphertext binds as associated data), and
    written before the method, so a method never exists without its secret: a secret
    whose method is missing or deleted is an orphan, erased by ``purge_orphan_secrets``.
    """

    # Models with this flag go to the vault alias (db.routers.VaultRouter).
    vault_table = True

    token = models.CharField(max_length=64, primary_key=True, editable=False)
    data_key = models.ForeignKey(DataKey, on_delete=models.PROTECT, related_name="secrets")
    ciphertext = models.BinaryField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "payments_vault_cardsecret"
        verbose_name = "card secret"

    def __str__(self) -> str:
        return f"card secret under DEK {self.data_key_id:08x}"

    def sealed(self) -> bytes:
        """The card's ciphertext blob."""
        return bytes(self.ciphertext)


class RevealWindow(models.Model):
    """Reveals per actor in the current one-minute window (the reveal rate limit).

    One row per actor: locking it serializes that actor's reveals, so the limit
    cannot be raced past, and the check costs the same however long the history.
    """

    actor = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "reveal rate window"

    def __str__(self) -> str:
        return f"{self.actor_id}: {self.count} since {self.window_start:%H:%M:%S}"


class UsedEntryNonce(models.Model):
    """A card form's one-time nonce, spent (payments.vault.entry): its SHA-256, unique, so a
    payload is opened at most once. Rows older than the nonce's lifetime are purged by the
    hourly key job (an old nonce is refused by its signature's age anyway)."""

    nonce_sha256 = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "spent card-entry nonce"

    def __str__(self) -> str:
        return f"nonce {self.nonce_sha256[:12]} used {self.used_at:%Y-%m-%d %H:%M}"
