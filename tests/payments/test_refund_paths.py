"""One way a refund starts: ``payments.services.refunds.open_refund`` writes the refund and
its audit event together, whoever starts it (an operator, a compensation, the bank)."""

from __future__ import annotations

import re
from pathlib import Path

PAYMENTS = Path(__file__).resolve().parents[2] / "payments"


def test_only_open_refund_creates_a_refund_row() -> None:
    creating = re.compile(
        r"\bRefund\.objects\.(?:create|bulk_create|get_or_create)\b|(?<!class )\bRefund\("
    )
    writers = sorted(
        str(module.relative_to(PAYMENTS))
        for module in PAYMENTS.rglob("*.py")
        if "migrations" not in module.parts and creating.search(module.read_text())
    )
    assert writers == ["services/refunds.py"]
    source = (PAYMENTS / "services" / "refunds.py").read_text()
    assert len(creating.findall(source)) == 1
