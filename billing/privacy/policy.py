"""The privacy policy's versions: each one a template, the newest is current.

A new version is a new template (``portal/privacy/policy_<version>.html``) added at the
end of VERSIONS; customers are asked to accept it on their privacy page.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    published: datetime.date

    @property
    def template(self) -> str:
        return f"portal/privacy/policy_{self.version}.html"


VERSIONS: tuple[PolicyVersion, ...] = (PolicyVersion("2026-1", datetime.date(2026, 12, 1)),)


def current_policy() -> PolicyVersion:
    return VERSIONS[-1]


def policy_version(version: str) -> PolicyVersion | None:
    return next((v for v in VERSIONS if v.version == version), None)
