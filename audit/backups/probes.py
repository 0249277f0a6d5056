"""What the apps above audit add to a backup and its restore test, registered at start-up.

Audit is below every app: backups cannot import billing, payments or security. Each app
registers instead (from its ``AppConfig.ready``):

- a **probe**: ``snapshot(cursor)`` reads, in the dump's own snapshot, what the restored
  database must show again (billing: a sample of signed documents' SHA-256), kept in the
  manifest under the probe's name; ``check(data)`` runs inside the restored database with
  the restored keys and answers ``(ok, detail)`` (billing: the documents hash the same and
  the signing key opens; payments: one stored card per data key decrypts);
- an **alert**: who is told when a backup or a restore test fails (security raises a
  security alert).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Snapshot = Callable[[Any], Any]
Check = Callable[[Any], tuple[bool, str]]
Alert = Callable[..., object]
"""(*, kind, summary, detail, by) -> None"""


@dataclass(frozen=True)
class Probe:
    name: str
    check: Check
    snapshot: Snapshot | None = None


_probes: dict[str, Probe] = {}
_alerts: list[Alert] = []


def register_probe(name: str, *, check: Check, snapshot: Snapshot | None = None) -> None:
    _probes[name] = Probe(name, check, snapshot)


def probes() -> list[Probe]:
    return list(_probes.values())


def register_alert(alert: Alert) -> None:
    if alert not in _alerts:
        _alerts.append(alert)


def alert(*, kind: str, summary: str, detail: str, by: Any) -> None:
    """Tell whoever registered (the security officers) that a backup action failed."""
    for handler in _alerts:
        handler(kind=kind, summary=summary, detail=detail, by=by)
