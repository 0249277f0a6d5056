"""Every payments state change: card payments, their settle and reconciliation, refunds,
the gateway account. One module per domain action:

- ``card_payments``: ``pay_invoice``, ``pay_invoice_with_new_card`` (step 1, reserve),
  ``purge_idempotency_keys``;
- ``settlement``: ``charge_payment`` (step 2) and ``settle`` (step 3), ``record_failure``;
- ``card_reconciliation``: ``reconcile_payment(s)``: unknown outcomes asked of the
  gateway, pending refunds retried;
- ``refunds``: ``refund_payment``; ``open_refund``, ``send_refund``, ``complete_refund``
  (every refund, whoever starts it);
- ``gateway_account``: ``get_gateway_account``, the account that reveals cards for the
  gateway call;
- ``checks``: what a request must pass before anything is written (``require_step_up``,
  re-exported here, is ``payments.step_up``'s);
- ``risk_reviews``: ``decide_risk_review``, a fraud analyst's approve or decline of a
  held payment (it charges or fails it), and ``record_refused_risk_review``;
- ``hot_statements``: the card payment's compiled reads and one-statement writes.

A card payment runs in three steps, so that the gateway is never called inside a
database transaction and an invoice is never captured beyond its amount due:

1. **reserve** (one transaction, under the invoice's row lock): check the
   idempotency key, check the amount against what is left to pay (a payment still in
   flight refuses the attempt), create the PENDING payment (it holds its amount) and
   reveal its card for the gateway account (one commit for all of it);
2. **charge** (no transaction): call the gateway with the payment's own acquirer
   idempotency key;
3. **settle** (one transaction): record the answer. A capture goes to the invoice
   through ``billing.services.record_payment_amount``; if the invoice can no longer
   take it (voided or credited meanwhile), the charge is refunded at once
   (compensation), so no acquirer charge is left uncompensated.

A lost answer leaves the payment UNKNOWN (still holding its amount) until
``reconcile_payment`` asks the gateway by the same key. Bank transfers are recorded
by ``payments.reconciliation``.

Risk: in step 1 every card attempt goes through ``payments.fraud.assess_card_payment``
(under the same lock). Allowed: charged as above. Blocked: recorded FAILED
(``risk_blocked``) and never sent to the gateway. Held for review: PENDING, holding its
amount, not charged until a fraud analyst approves it
(``decide_risk_review``); reconciliation leaves it alone meanwhile.

Callers use this package, as billing's: ``from payments import services``;
``services.pay_invoice(invoice, ...)``. Inside payments, a module imports the one it needs.
"""

from payments.services.card_payments import (
    held_amount,
    pay_invoice,
    pay_invoice_with_new_card,
    purge_idempotency_keys,
)
from payments.services.card_reconciliation import reconcile_payment, reconcile_payments
from payments.services.gateway_account import get_gateway_account
from payments.services.refunds import REFUND_PERMISSION, refund_payment
from payments.services.risk_reviews import (
    decide_risk_review,
    record_refused_risk_review,
    refund_as_fraud,
)
from payments.services.settlement import charge_payment, record_failure
from payments.step_up import require_step_up

__all__ = [
    "REFUND_PERMISSION",
    "charge_payment",
    "decide_risk_review",
    "get_gateway_account",
    "held_amount",
    "pay_invoice",
    "pay_invoice_with_new_card",
    "purge_idempotency_keys",
    "reconcile_payment",
    "reconcile_payments",
    "record_failure",
    "record_refused_risk_review",
    "refund_as_fraud",
    "refund_payment",
    "require_step_up",
]
