"""Small charts drawn on the server as SVG: no script, nothing fetched, fits any CSP.

A dashboard shows a trend (payments and failures per day over 30 days) as a bar chart
the browser draws from markup; each bar carries its date and value as a tooltip
(``<title>``), and the chart a text summary for screen readers.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 600
HEIGHT = 140
_AXIS = 18  # room for the day labels under the bars
_TOP = 8


@dataclass(frozen=True)
class Series:
    """One series of a daily chart: its name, its colour (an SVG fill; the legend's key
    takes the CSS class ``chart-<key>`` from the admin's stylesheet, as the CSP allows no
    inline style) and its value per day."""

    name: str
    key: str
    colour: str
    values: Mapping[datetime.date, int]


def days_ending(last: datetime.date, count: int) -> list[datetime.date]:
    """``count`` consecutive days ending with ``last``, oldest first."""
    return [last - datetime.timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def daily_bars(
    days: Sequence[datetime.date], series: Sequence[Series], *, label: str
) -> SafeString:
    """Stacked bars, one per day: the series drawn bottom up in the given order."""
    peak = max((sum(s.values.get(day, 0) for s in series) for day in days), default=0)
    scale = (HEIGHT - _AXIS - _TOP) / peak if peak else 0
    slot = WIDTH / max(len(days), 1)
    bar = max(slot - 2, 1)
    rects: list[tuple[object, ...]] = []
    for index, day in enumerate(days):
        base: float = HEIGHT - _AXIS
        for s in series:
            value = s.values.get(day, 0)
            if not value:
                continue
            height = value * scale
            base -= height
            rects.append(
                (
                    f"{index * slot + 1:.1f}",
                    f"{base:.1f}",
                    f"{bar:.1f}",
                    f"{height:.1f}",
                    s.colour,
                    f"{day.isoformat()}: {s.name} {value}",
                )
            )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        rects,
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
        (
            (f"{index * slot + slot / 2:.1f}", HEIGHT - 4, day.strftime("%d/%m"))
            for index, day in enumerate(days)
            if index % 7 == (len(days) - 1) % 7
        ),
    )
    totals = ", ".join(f"{s.name} {sum(s.values.get(day, 0) for day in days)}" for s in series)
    legend = format_html_join(
        " ",
        '<span class="chart-key"><span class="chart-{}"></span>{}</span>',
        ((s.key, s.name) for s in series),
    )
    return format_html(
        '<figure class="chart"><svg role="img" aria-label="{}" viewBox="0 0 {} {}"'
        ' width="100%" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/>{}{}</svg>'
        "<figcaption>{} · {}</figcaption></figure>",
        f"{label}: {totals}",
        WIDTH,
        HEIGHT,
        HEIGHT - _AXIS,
        WIDTH,
        HEIGHT - _AXIS,
        bars,
        ticks,
        legend,
        totals,
    )
