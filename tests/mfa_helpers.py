"""Second factors for tests: a confirmed TOTP device, its current code, a verified session."""

from __future__ import annotations

import time

from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import Client, RequestFactory
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


def stepped_up_request(user: User) -> HttpRequest:
    """A request (what an admin view passes to a service) from a session that verified the
    user's second factor just now: the step-up every sensitive service asks for."""
    device = give_totp_device(user)
    request = RequestFactory().post("/admin/")
    user.otp_device = device  # type: ignore[attr-defined]  # as django-otp's middleware sets
    user.is_verified = lambda: user.otp_device is not None  # type: ignore[attr-defined]
    request.user = user
    request.session = SessionStore()
    request.session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    request.session[MFA_VERIFIED_AT_KEY] = timezone.now().timestamp()
    return request
