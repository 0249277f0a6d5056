"""Endpoint secrets: sealed by the keyring (bound to their endpoint), and never lost to a
KEK retirement."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from audit import SYSTEM
from audit.models import AuditEvent
from billing.webhooks import keys
from billing.webhooks.exceptions import WebhookError
from billing.webhooks.selectors import kek_versions_in_use, signing_secrets
from billing.webhooks.services import roll_webhook_secret
from payments.vault.services import retire_kek_versions, rotate_kek
from security.keyring import get_keyring
from security.models import User
from tests.billing.webhooks.conftest import Receiver, stepped_up

pytestmark = pytest.mark.django_db


def test_a_sealed_secret_opens_only_for_its_endpoint_and_slot(
    register: Callable[..., Any], receiver: Receiver
) -> None:
    first, secret = register(receiver.url)
    second, _ = register(receiver.url)

    assert signing_secrets(first, timezone.now()) == [secret]
    with pytest.raises(WebhookError):  # copied onto another endpoint: does not open
        keys.open_sealed(
            first.secret_sealed, version=first.secret_kek_version, public_id=second.public_id
        )
    with pytest.raises(WebhookError):
        keys.open_sealed(
            first.secret_sealed,
            version=first.secret_kek_version,
            public_id=first.public_id,
            slot="previous",
        )


def test_retiring_kek_versions_spares_those_sealing_webhook_secrets(
    register: Callable[..., Any], receiver: Receiver, webhook_keyring: Path
) -> None:
    endpoint, secret = register(receiver.url)
    get_keyring().add_version()  # a new KEK; the endpoint's secret stays under version 1

    assert kek_versions_in_use() == {1}
    assert retire_kek_versions(by=SYSTEM) == []
    assert set(json.loads(webhook_keyring.read_text())["kek"]) == {"1", "2"}
    assert signing_secrets(endpoint, timezone.now()) == [secret]


def test_a_kek_rotation_seals_webhook_secrets_again_and_frees_the_old_version(
    register: Callable[..., Any],
    receiver: Receiver,
    webhook_keyring: Path,
    officer: User,
) -> None:
    endpoint, secret = register(receiver.url)
    rolled, new_secret = roll_webhook_secret(
        endpoint, overlap_hours=24, by=officer, request=stepped_up(officer)
    )  # a previous secret kept beside the current one: both slots are sealed again

    report = rotate_kek(by=SYSTEM, retire_old=True)

    rolled.refresh_from_db()
    assert report.webhook_endpoints == 1
    assert rolled.secret_kek_version == rolled.previous_secret_kek_version == report.kek_version
    assert signing_secrets(rolled, timezone.now()) == [new_secret, secret]  # unchanged
    assert 1 in report.retired_versions  # no secret needs the old KEK any more
    assert set(json.loads(webhook_keyring.read_text())["kek"]) == {str(report.kek_version)}
    event = AuditEvent.objects.get(action="vault.kek_rotated")
    assert event.details["webhook_endpoints"] == 1
