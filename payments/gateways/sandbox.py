"""The built-in sandbox acquirer: a real local component with its own ledger.

It keeps its charges in its own table (``SandboxCharge``), written in its own
transactions, keyed by the idempotency key the platform sends: a second
request with the same key returns the first answer and never charges again.

Test card numbers (any valid expiry; public test numbers, valid Luhn):

==================  ==========================================================
4000000000000002    declined (``card_declined``)
4000000000009995    declined (``insufficient_funds``)
4000000000000119    **timeout with unknown outcome**: the acquirer charges the
                    card, then the answer is lost (``GatewayTimeout``); a
                    ``lookup`` finds the captured charge
any other card      approved and captured
==================  ==========================================================
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext_lazy

from db.compiled import insert
from payments.gateways import ChargeResult, GatewayError, GatewayTimeout, RefundResult
from payments.gateways.models import SandboxCharge, SandboxRefund

if TYPE_CHECKING:
    from billing.money import Money
    from payments.vault.services import RevealedCard

CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_TIMEOUT = "4000000000000119"

# The test cards the demo's pay page lists (only while the sandbox is the gateway).
TEST_CARDS = (
    ("4242 4242 4242 4242", gettext_lazy("approved and captured")),
    ("4000 0000 0000 0002", gettext_lazy("declined")),
    ("4000 0000 0000 9995", gettext_lazy("declined: insufficient funds")),
    ("4000 0000 0000 0119", gettext_lazy("no answer: the outcome is confirmed within minutes")),
)

_DECLINES = {
    CARD_DECLINED: ("card_declined", "The card was declined."),
    CARD_INSUFFICIENT_FUNDS: ("insufficient_funds", "The card has insufficient funds."),
}


def _result(charge: SandboxCharge) -> ChargeResult:
    approved = charge.outcome == SandboxCharge.Outcome.CAPTURED
    message = "" if approved else dict(_DECLINES.values()).get(charge.decline_code, "")
    return ChargeResult(
        approved=approved,
        reference=charge.reference,
        amount=charge.amount,
        currency=charge.currency,
        decline_code=charge.decline_code,
        message=message or ("" if approved else "The card was declined."),
    )


class SandboxAcquirer:
    """The default gateway: approves, declines, runs out of funds or times out by card number."""

    name = "sandbox"
    test_cards = TEST_CARDS

    def authorize_capture(
        self, *, idempotency_key: str, amount: Money, card: RevealedCard
    ) -> ChargeResult:
        """Charge once per key; a repeated key with other parameters is refused."""
        decline_code = _DECLINES.get(card.number, ("", ""))[0]
        # One INSERT is its own transaction in autocommit (the platform calls the gateway
        # outside its transactions); inside someone's atomic block, a savepoint keeps a
        # duplicate key from breaking it.
        inside = connection.in_atomic_block
        try:
            with transaction.atomic() if inside else contextlib.nullcontext():
                charge = insert(
                    SandboxCharge(
                        idempotency_key=idempotency_key,
                        reference="sbx_ch_" + secrets.token_hex(10),
                        amount=amount.amount,
                        currency=amount.currency,
                        card_last4=card.last4,
                        outcome=SandboxCharge.Outcome.DECLINED
                        if decline_code
                        else SandboxCharge.Outcome.CAPTURED,
                        decline_code=decline_code,
                    )
                )
        except IntegrityError:
            # The key was charged before (a retry), or two requests with one key raced:
            # the first one's charge is the answer.
            return self._replay(SandboxCharge.objects.get(idempotency_key=idempotency_key), amount)
        if card.number == CARD_TIMEOUT:
            raise GatewayTimeout("the sandbox acquirer did not answer in time", field="gateway")
        return _result(charge)

    def _replay(self, charge: SandboxCharge, amount: Money) -> ChargeResult:
        if (charge.amount, charge.currency) != (amount.amount, amount.currency):
            raise GatewayError(
                "this idempotency key was used for another amount", field="idempotency_key"
            )
        return _result(charge)

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: Money) -> RefundResult:
        """Refund once per key, never more than is left of the charge."""
        with transaction.atomic():
            existing = SandboxRefund.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return RefundResult(reference=existing.reference, amount=existing.amount)
            charge = (
                SandboxCharge.objects.select_for_update().filter(reference=charge_reference).first()
            )
            if charge is None or charge.outcome != SandboxCharge.Outcome.CAPTURED:
                raise GatewayError("no captured charge has this reference", field="reference")
            if amount.currency != charge.currency:
                raise GatewayError("the currency differs from the charge's", field="currency")
            if amount.amount <= 0 or amount.amount > charge.amount - charge.refunded_amount:
                raise GatewayError("more than is left of the charge", field="amount")
            charge.refunded_amount += amount.amount
            charge.save(update_fields=["refunded_amount"])
            refund = SandboxRefund.objects.create(
                idempotency_key=idempotency_key,
                charge=charge,
                reference="sbx_re_" + secrets.token_hex(10),
                amount=amount.amount,
            )
        return RefundResult(reference=refund.reference, amount=refund.amount)

    def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """What the acquirer did with this key (None: it never received the request)."""
        charge = SandboxCharge.objects.filter(idempotency_key=idempotency_key).first()
        return _result(charge) if charge is not None else None
