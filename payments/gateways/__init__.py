"""Payment gateways: one small interface, and the built-in sandbox acquirer.

A gateway authorizes and captures a card payment in one call, refunds, and
looks up a charge by the idempotency key it was sent with. Every call happens
outside any database transaction of the platform (payments.services makes
sure of it). An answer that never arrived is ``GatewayTimeout``: the outcome is
unknown and is reconciled by ``lookup`` later, never guessed.

``get_gateway()`` returns the configured gateway (setting PAYMENTS_GATEWAY, a
dotted path; default ``payments.gateways.sandbox.SandboxAcquirer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from payments.exceptions import PaymentsError

if TYPE_CHECKING:
    from billing.money import Money
    from payments.vault.services import RevealedCard


class GatewayError(PaymentsError):
    """The gateway refused the request itself (malformed, conflicting key)."""


class GatewayTimeout(PaymentsError):
    """No answer: the gateway may or may not have acted. Reconcile by lookup; never guess."""


@dataclass(frozen=True)
class ChargeResult:
    """A gateway's answer about a charge."""

    approved: bool
    reference: str
    amount: int
    currency: str
    decline_code: str = ""
    message: str = ""


@dataclass(frozen=True)
class RefundResult:
    reference: str
    amount: int


class Gateway(Protocol):
    """What a payment gateway offers the platform."""

    name: str

    def authorize_capture(
        self, *, idempotency_key: str, amount: Money, card: RevealedCard
    ) -> ChargeResult:
        """Charge the card; the same key always returns the first charge's answer."""

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Money) -> RefundResult:
        """Give back part or all of a captured charge; the same key refunds once."""

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The charge made with this key, or None if the gateway never received it."""


@cache
def _gateway_class(path: str) -> type:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"PAYMENTS_GATEWAY {path!r} cannot be imported: {exc}") from exc


def get_gateway() -> Gateway:
    """The configured gateway (a fresh instance; gateways keep no state in memory)."""
    gateway: Gateway = _gateway_class(settings.PAYMENTS_GATEWAY)()
    return gateway


__all__ = [
    "ChargeResult",
    "Gateway",
    "GatewayError",
    "GatewayTimeout",
    "RefundResult",
    "get_gateway",
]
