"""The demo's published second factors (refused in production)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import SYSTEM, record
from security import mfa
from security.actors import Actor
from security.exceptions import NotAllowed
from security.models import BackupCode, BackupCodeDevice

User = get_user_model()


DEMO_BACKUP_CODE_COUNT = 5


def _demo_digest(purpose: str, username: str) -> bytes:
    return hashlib.sha256(f"tillit-demo:{purpose}:{username}".encode()).digest()


def ensure_demo_second_factor(*, user: Any, by: Actor = SYSTEM) -> dict[str, str]:
    """Give a demo login a TOTP device with a fixed, published secret and fixed backup codes.

    Demo only: the secrets are derived from the username and printed by
    seed_demo, so anyone can sign in. Refused when TILLIT_MODE=production.
    Returns what to print: the TOTP secret (base32) and the backup codes.
    """
    if settings.PRODUCTION:
        raise NotAllowed("demo: published second factors never exist in production")
    key = _demo_digest("totp", user.get_username())[:20].hex()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    codes = []
    for index in range(DEMO_BACKUP_CODE_COUNT):
        digest = _demo_digest(f"backup{index}", user.get_username())
        raw = "".join(alphabet[b % 32] for b in digest[:10])
        codes.append(f"{raw[:5]}-{raw[5:]}")
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)
        device = TOTPDevice.objects.filter(user=user, key=key, confirmed=True).first()
        if device is None:
            TOTPDevice.objects.filter(user=user).delete()
            TOTPDevice.objects.create(user=user, name="Demo authenticator", key=key, confirmed=True)
            record("security.demo_factor_issued", actor=by, obj=user, method="totp")
        BackupCodeDevice.objects.filter(user=user).delete()
        backup = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
        BackupCode.objects.bulk_create(
            [BackupCode(device=backup, code_hash=mfa.hash_backup_code(c)) for c in codes]
        )
    return {"TOTP secret": mfa.base32_secret(key), "Backup codes": " ".join(codes)}
