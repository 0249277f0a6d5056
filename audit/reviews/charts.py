"""The review's charts, drawn on the server as SVG (pygal): the same picture in the admin
page and in the PDF, as ``data:`` images (allowed by the content security policy)."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

import pygal
from pygal.style import Style

# pygal adds a configuration script for its browser tooltips: an image never runs it.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#888",
    font_family="DejaVu Sans, sans-serif",
    colors=("#2f6f9f", "#c0392b", "#e6a23c", "#5b8c5a", "#7d5ba6"),
    title_font_size=15,
    label_font_size=11,
    legend_font_size=11,
)


def _chart(
    kind: Any, title: str, labels: Sequence[str], series: dict[str, list[int]], **options: Any
) -> str:
    chart = kind(
        width=720,
        height=300,
        js=[],
        disable_xml_declaration=True,
        style=_STYLE,
        legend_at_bottom=True,
        x_label_rotation=30,
        print_values=False,
        **options,
    )
    chart.title = title
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, values)
    return _SCRIPT.sub("", chart.render(is_unicode=True))


def data_uri(svg: str) -> str:
    """The chart as an ``<img src>`` value."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def authentication_chart(section: dict[str, Any]) -> str:
    """Logins, failures and lockouts per week."""
    weeks = section["weeks"]
    return _chart(
        pygal.Bar,
        "Sign-ins per week",
        [w["week"] for w in weeks],
        {
            "logins": [w["logins"] for w in weeks],
            "failures": [w["failures"] for w in weeks],
            "lockouts": [w["lockouts"] for w in weeks],
        },
    )


def mfa_coverage_chart(section: dict[str, Any]) -> str:
    """Share of staff with a second factor at the end of each week."""
    coverage = section["mfa_coverage"]
    return _chart(
        pygal.Line,
        "Staff with a second factor (%)",
        [c["week"] for c in coverage],
        {"coverage": [c["percent"] for c in coverage]},
        range=(0, 100),
    )


def payments_chart(section: dict[str, Any]) -> str:
    """Card and bank payments per week by outcome."""
    weeks = section["weeks"]
    return _chart(
        pygal.StackedBar,
        "Payments per week",
        [w["week"] for w in weeks],
        {
            "succeeded": [w["succeeded"] for w in weeks],
            "declined": [w["declined"] for w in weeks],
            "blocked (risk)": [w["blocked"] for w in weeks],
        },
    )


def fraud_chart(section: dict[str, Any]) -> str:
    """Risk reviews, blocks and fraud found later per week (the fraud report's weeks)."""
    weeks = section["fraud"]["periods"]
    return _chart(
        pygal.Line,
        "Risk reviews, blocks and fraud found later per week",
        [w["period"] for w in weeks],
        {
            "held for review": [w["reviewed"] for w in weeks],
            "blocked": [w["blocked"] for w in weeks],
            "fraud found later": [w["fraud_later"] for w in weeks],
        },
    )


def review_charts(sections: dict[str, Any]) -> dict[str, str]:
    """Every chart of a review, by name, as SVG text."""
    return {
        "authentication": authentication_chart(sections["authentication"]),
        "mfa_coverage": mfa_coverage_chart(sections["authentication"]),
        "payments": payments_chart(sections["payments"]),
        "fraud": fraud_chart(sections["payments"]),
    }
