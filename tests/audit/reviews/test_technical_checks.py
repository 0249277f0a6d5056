"""The review's technical checks run the real tools: bandit finds what is planted; pip-audit
that cannot reach (or does not find) its vulnerability data is "not checked", never clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.reviews import checks


def test_bandit_reports_a_planted_shell_injection_as_high_severity(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n",
        encoding="utf-8",
    )
    (tmp_path / "fine.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    result = checks.bandit_scan([tmp_path])
    assert result["status"] == "checked"
    assert result["high"] == 1
    assert {item["test"]: item["severity"] for item in result["listed"]}["B602"] == "HIGH"


def test_bandit_on_clean_code_finds_nothing(tmp_path: Path) -> None:
    (tmp_path / "fine.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    assert checks.bandit_scan([tmp_path])["findings"] == 0


def test_pip_audit_that_cannot_reach_its_data_is_not_checked() -> None:
    unreachable = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    result = checks.dependency_scan(env=unreachable)
    assert result["status"] == "not checked"
    assert "could not reach" in result["reason"]


def test_a_report_that_skipped_packages_is_not_clean() -> None:
    """What pip-audit prints against a mirror that does not know the packages: exit 0,
    "No known vulnerabilities found", and every package skipped."""
    report = json.loads(
        '{"dependencies": [{"name": "django", "skip_reason": "Dependency not found on PyPI'
        ' and could not be audited: django (5.2.19)"}, {"name": "pygal", "version": "3.1.3",'
        ' "vulns": []}], "fixes": []}'
    )
    result = checks.read_pip_audit_report(report)
    assert result["status"] == "not checked" and result["skipped"] == 1
    assert "1 of 2 packages" in result["reason"]


def test_a_vulnerable_package_fails_the_requirement_even_when_others_were_skipped() -> None:
    report = {
        "dependencies": [
            {"name": "a", "skip_reason": "not found"},
            {"name": "b", "version": "1.0", "vulns": [{"id": "PYSEC-0000-1"}]},
        ]
    }
    result = checks.read_pip_audit_report(report)
    assert result["vulnerable"] == [{"name": "b", "version": "1.0", "ids": ["PYSEC-0000-1"]}]


@pytest.mark.django_db
def test_this_installations_dependency_scan_never_claims_clean_without_auditing_all() -> None:
    result = checks.dependency_scan()
    if result["status"] == "checked":
        assert result["skipped"] == 0
    else:
        assert result["reason"]
