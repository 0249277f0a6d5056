"""How the audit log's admin writes an event's details.

Details are plain JSON; amounts in them are integers in a currency's minor unit. The
audit app imports no domain app, so it cannot format money itself: the billing app
hands it the admin's one formatter when it starts (``billing.apps``), and until then
(or for a value it does not know) the details are shown as stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

DetailsFormatter = Callable[[Mapping[str, Any]], list[tuple[str, str]]]

_formatter: DetailsFormatter | None = None


def set_details_formatter(formatter: DetailsFormatter) -> None:
    """Use ``formatter`` for every event's details on the admin's pages."""
    global _formatter
    _formatter = formatter


def details_rows(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An event's details as (key, text) rows, sorted by key."""
    if _formatter is not None:
        return _formatter(details)
    return [
        (key, json.dumps(details[key], sort_keys=True, ensure_ascii=False))
        for key in sorted(details)
    ]
