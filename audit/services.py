"""Appending to the audit chain: the only code that writes AuditEvent rows."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import SYSTEM
from audit.chain import GENESIS_HASH, event_hash
from audit.exceptions import InvalidAuditEvent
from audit.models import AuditEvent

ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# A details key is refused if one of its words is one of these...
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pan",
        "cvc",
        "cvv",
        "cvc2",
        "secret",
        "token",
        "otp",
        "pin",
        "passphrase",
        "private",
        "totp",
        "seed",
    }
)
# ...or if it contains one of these anywhere ("csrftoken", "newpassword").
_SECRET_FRAGMENTS = ("password", "secret", "token", "passphrase", "privatekey", "cardnumber")
_WORD_SPLIT = re.compile(r"[^a-zA-Z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# pg_advisory_xact_lock key that serializes appends: "tillit" in ASCII.
_CHAIN_LOCK_KEY = 0x74696C6C6974


def _looks_secret(key: str) -> bool:
    words = {w.lower() for w in _WORD_SPLIT.split(key) if w}
    squashed = re.sub(r"[^a-z0-9]", "", key.lower())
    return bool(words & _SECRET_WORDS) or any(f in squashed for f in _SECRET_FRAGMENTS)


def _check_details(value: Any, path: str) -> None:
    """Plain JSON only (no floats: money is integers), and no secret-looking key."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        raise InvalidAuditEvent(f"details{path}: floats are not allowed; use int or str")
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_details(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidAuditEvent(f"details{path}: keys must be strings, not {key!r}")
            if _looks_secret(key):
                raise InvalidAuditEvent(
                    f"details{path}.{key}: looks like a secret and may not be recorded"
                )
            _check_details(item, f"{path}.{key}")
        return
    raise InvalidAuditEvent(
        f"details{path}: {type(value).__name__} is not JSON-serializable; pass str or int"
    )


def describe_actor(actor: Any) -> tuple[str, str, str]:
    """(actor_type, actor_id, actor_label) for a user, a model instance or SYSTEM."""
    if actor == SYSTEM:
        return "system", "", "system"
    if isinstance(actor, AnonymousUser):
        return "anonymous", "", "anonymous"
    if isinstance(actor, get_user_model()):
        return "user", str(actor.pk), actor.get_username()[:200]
    if isinstance(actor, models.Model) and actor.pk is not None:
        return actor._meta.label_lower, str(actor.pk), str(actor)[:200]
    raise InvalidAuditEvent(
        f"actor: expected a user, a saved model instance or audit.SYSTEM, not {actor!r}"
    )


def _request_facts(request: HttpRequest | None) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    ip: str | None = None
    raw = request.META.get("REMOTE_ADDR") or ""
    if raw:
        try:
            ip = str(ipaddress.ip_address(raw))
        except ValueError:
            ip = None
    return ip, str(request.META.get("HTTP_USER_AGENT", ""))[:512]


def _lock_chain() -> None:
    """Serialize appends so the chain never forks; held until the caller commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def record_event(
    action: str,
    *,
    actor: Any,
    obj: models.Model | None,
    request: HttpRequest | None,
    details: dict[str, Any],
) -> AuditEvent:
    """Append one event after the current head, in the caller's transaction.

    The append commits or rolls back with the change it describes. Bad input
    (an action outside the dotted pattern, non-JSON or secret-looking details,
    an unknown actor) raises InvalidAuditEvent before anything is written.
    """
    if not isinstance(action, str) or not ACTION_PATTERN.match(action) or len(action) > 100:
        raise InvalidAuditEvent(
            f"action: {action!r} is not a dotted lower-case name like 'invoice.finalized'"
        )
    _check_details(details, "")
    actor_type, actor_id, actor_label = describe_actor(actor)
    object_type, object_id = "", ""
    if obj is not None:
        if obj.pk is None:
            raise InvalidAuditEvent("obj: the object must be saved before it is recorded")
        object_type, object_id = obj._meta.label_lower, str(obj.pk)
    ip, user_agent = _request_facts(request)

    with transaction.atomic():
        _lock_chain()
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        event = AuditEvent(
            seq=seq,
            created_at=timezone.now(),
            actor_type=actor_type,
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            object_type=object_type,
            object_id=object_id,
            ip=ip,
            user_agent=user_agent,
            details=dict(details),
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event.hashed_fields())
        event.save(force_insert=True)
    return event
