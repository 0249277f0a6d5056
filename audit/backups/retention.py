"""Which backups a daily / weekly / monthly policy keeps (a pure function, tested alone)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RetentionPolicy:
    """The newest backup of each of the last ``daily`` days, ``weekly`` ISO weeks and
    ``monthly`` months that have a backup (days without one do not count, so a stopped
    schedule never ages every backup out)."""

    daily: int
    weekly: int
    monthly: int


def _newest_per_period(
    runs: list[tuple[int, datetime]], period: Callable[[datetime], Hashable], count: int
) -> set[int]:
    kept: set[int] = set()
    seen: list[Hashable] = []
    for pk, started in runs:  # newest first
        key = period(started)
        if key in seen:
            continue
        if len(seen) == count:
            break
        seen.append(key)
        kept.add(pk)
    return kept


def backups_to_keep(runs: Iterable[tuple[int, datetime]], *, policy: RetentionPolicy) -> set[int]:
    """The ids (of ``(id, started_at)`` pairs) the policy keeps; periods are in UTC."""
    ordered = sorted(runs, key=lambda run: (run[1], run[0]), reverse=True)
    ordered = [(pk, started.astimezone(UTC)) for pk, started in ordered]
    return (
        _newest_per_period(ordered, lambda t: t.date(), policy.daily)
        | _newest_per_period(ordered, lambda t: t.isocalendar()[:2], policy.weekly)
        | _newest_per_period(ordered, lambda t: (t.year, t.month), policy.monthly)
    )
