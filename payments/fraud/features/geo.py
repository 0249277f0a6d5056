"""Countries of a card (by its BIN) and of a network address (by CIDR), from CSV tables.

The tables are files named by ``FRAUD_BIN_TABLE`` and ``FRAUD_IP_TABLE`` (settings; the
defaults are the example tables in ``data/``). Each is read once per process and path;
a line that does not parse is refused naming the file and line, so a broken table never
silently turns every country into "unknown".
"""

from __future__ import annotations

import bisect
import csv
import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DATA = Path(__file__).resolve().parent / "data"


def _rows(path: Path, header: tuple[str, str]) -> list[tuple[int, str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImproperlyConfigured(f"fraud table {path} cannot be read: {exc}") from exc
    rows = []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(n, line) for n, line in lines if not line.lstrip().startswith("#")]
    numbers = [n for n, _line in lines]
    for number, fields in zip(numbers, csv.reader(line for _, line in lines), strict=True):
        if len(fields) != 2:
            raise ImproperlyConfigured(f"{path}:{number}: expected two columns, {header}")
        if tuple(f.strip() for f in fields) == header:
            continue
        country = fields[1].strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise ImproperlyConfigured(f"{path}:{number}: {fields[1]!r} is not a country code")
        rows.append((number, fields[0].strip(), country))
    return rows


@functools.cache
def _bin_table(path: str) -> dict[str, str]:
    table = {}
    for number, prefix, country in _rows(Path(path), ("prefix", "country")):
        if not prefix.isdigit() or not 1 <= len(prefix) <= 8:
            raise ImproperlyConfigured(f"{path}:{number}: {prefix!r} is not a BIN prefix")
        table[prefix] = country
    return table


@dataclass(frozen=True)
class _Networks:
    """Per address family and prefix length, the sorted network starts and their countries."""

    by_length: dict[tuple[int, int], tuple[list[int], list[str]]]


@functools.cache
def _ip_table(path: str) -> _Networks:
    grouped: dict[tuple[int, int], dict[int, str]] = {}
    for number, cidr, country in _rows(Path(path), ("cidr", "country")):
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{path}:{number}: {cidr!r} is not a CIDR ({exc})") from None
        key = (network.version, network.prefixlen)
        grouped.setdefault(key, {})[int(network.network_address)] = country
    return _Networks(
        {
            key: (sorted(starts), [starts[s] for s in sorted(starts)])
            for key, starts in sorted(grouped.items(), key=lambda item: -item[0][1])
        }
    )


def card_country(bin_: str) -> str | None:
    """The issuing country of the longest prefix of ``bin_`` in the BIN table, else None."""
    table = _bin_table(str(settings.FRAUD_BIN_TABLE))
    for length in range(min(len(bin_), 8), 0, -1):
        country = table.get(bin_[:length])
        if country is not None:
            return country
    return None


def ip_country(address: str) -> str | None:
    """The country of the longest network in the CIDR table holding ``address``, else None."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    value = int(ip)
    bits = 32 if ip.version == 4 else 128
    for (version, length), (starts, countries) in _ip_table(
        str(settings.FRAUD_IP_TABLE)
    ).by_length.items():
        if version != ip.version:
            continue
        start = value >> (bits - length) << (bits - length)
        at = bisect.bisect_left(starts, start)
        if at < len(starts) and starts[at] == start:
            return countries[at]
    return None
