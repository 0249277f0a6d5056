"""Second factors for tests: a confirmed TOTP device, its current code, a verified session."""

from __future__ import annotations

import time

from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from security.models import User
from security.selectors import MFA_VERIFIED_AT_KEY


def give_totp_device(user: User) -> TOTPDevice:
    """The user's confirmed TOTP device (created when missing)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test app", confirmed=True)
    return device


def totp_code(device: TOTPDevice) -> str:
    """The code the device's app shows now (time.time(), so time-machine moves it)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def mark_client_verified(client: Client, device: TOTPDevice) -> None:
    """Record in the client's session that this device was verified just now."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[MFA_VERIFIED_AT_KEY] = timezone.now().timestamp()
    session.save()
