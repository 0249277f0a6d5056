"""The review's technical checks (``check --deploy``, bandit, pip-audit) and its PCI DSS
checklist, each requirement with the automated evidence behind its status.

A scanner that cannot run, or cannot reach its data, is reported as ``not checked`` with
the reason, never as clean: only a scan that finished says what it found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks as django_checks

NOT_CHECKED = "not checked"
MET, NOT_MET = "met", "not met"
SCAN_TIMEOUT = 180
APP_DIRS = ("audit", "billing", "config", "db", "payments", "security")


def deploy_check() -> dict[str, Any]:
    """Django's system checks with the deployment checks, as ``check --deploy`` runs them."""
    messages = django_checks.run_checks(include_deployment_checks=True)
    listed = [
        {"id": m.id or "", "level": "error" if m.is_serious() else "warning", "msg": str(m.msg)}
        for m in messages
        if m.level >= django_checks.WARNING and not m.is_silenced()
    ]
    errors = sum(1 for m in listed if m["level"] == "error")
    status = "clean" if not listed else f"{errors} error(s), {len(listed) - errors} warning(s)"
    return {
        "status": status,
        "clean": not listed,
        "messages": listed[:50],
        "mode": "production" if settings.PRODUCTION else "development",
    }


def _run(command: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        list(command),
        capture_output=True,
        text=True,
        timeout=SCAN_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def _tool(module: str) -> list[str] | None:
    """The command running the tool of this environment, or None when it is not installed."""
    executable = Path(sys.executable).with_name(module.replace("_", "-"))
    return [str(executable)] if executable.exists() else None


def bandit_scan(paths: Sequence[Path] | None = None) -> dict[str, Any]:
    """bandit over the platform's code (tests and migrations left out): findings by
    severity, the first 30 listed; ``not checked`` when bandit is missing or fails."""
    command = _tool("bandit")
    if command is None:
        return {"status": NOT_CHECKED, "reason": "bandit is not installed here"}
    base = Path(settings.BASE_DIR)
    targets = (
        [str(p) for p in paths]
        if paths
        else [str(base / d) for d in APP_DIRS if (base / d).is_dir()]
    )
    try:
        code, out, err = _run(
            [*command, "-r", *targets, "-f", "json", "-q", "-x", "*/migrations/*,*/tests/*"]
        )
        report = json.loads(out)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return {"status": NOT_CHECKED, "reason": f"bandit did not finish: {type(exc).__name__}"}
    if code not in (0, 1) or "results" not in report:
        return {"status": NOT_CHECKED, "reason": (err or "bandit failed").strip()[-300:]}
    results = report["results"]
    by_severity: dict[str, int] = {}
    for item in results:
        by_severity[item["issue_severity"]] = by_severity.get(item["issue_severity"], 0) + 1
    return {
        "status": "checked",
        "findings": len(results),
        "by_severity": dict(sorted(by_severity.items())),
        "high": by_severity.get("HIGH", 0),
        "listed": [
            {
                "file": str(Path(item["filename"]).resolve().relative_to(base))
                if Path(item["filename"]).resolve().is_relative_to(base)
                else item["filename"],
                "line": item["line_number"],
                "test": item["test_id"],
                "severity": item["issue_severity"],
                "text": item["issue_text"][:200],
            }
            for item in results[:30]
        ],
    }


def dependency_scan(*, env: dict[str, str] | None = None) -> dict[str, Any]:
    """pip-audit of the installed packages: the known vulnerabilities it found, or ``not
    checked`` (with the reason) when it is missing or cannot reach its vulnerability data;
    never "clean" unless the scan ran to its end."""
    command = _tool("pip-audit")
    if command is None:
        return {"status": NOT_CHECKED, "reason": "pip-audit is not installed here"}
    try:
        code, out, err = _run(
            [*command, "-f", "json", "--progress-spinner", "off", "--timeout", "20"], env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"status": NOT_CHECKED, "reason": f"pip-audit did not finish: {type(exc).__name__}"}
    try:
        report = json.loads(out)
    except ValueError:
        report = None
    if code not in (0, 1) or not isinstance(report, dict) or "dependencies" not in report:
        last = (err or "no answer").strip().splitlines()[-1:] or ["no answer"]
        return {
            "status": NOT_CHECKED,
            "reason": f"pip-audit could not reach its vulnerability data: {last[0][:200]}",
        }
    return read_pip_audit_report(report)


def read_pip_audit_report(report: dict[str, Any]) -> dict[str, Any]:
    """pip-audit's JSON report as the review states it. A package pip-audit skipped (its
    data source did not know it: a private mirror, no network) was not checked, and pip-audit
    still says "No known vulnerabilities found" then: only a report that audited every
    package is ``checked``."""
    dependencies = report["dependencies"]
    skipped = [dep["name"] for dep in dependencies if dep.get("skip_reason")]
    vulnerable = [
        {
            "name": dep["name"],
            "version": dep.get("version", ""),
            "ids": [v["id"] for v in dep.get("vulns", [])],
        }
        for dep in dependencies
        if dep.get("vulns")
    ]
    result: dict[str, Any] = {
        "status": "checked",
        "packages": len(dependencies),
        "skipped": len(skipped),
        "vulnerable": vulnerable,
    }
    if skipped:
        result["status"] = NOT_CHECKED
        result["reason"] = (
            f"pip-audit could not find vulnerability data for {len(skipped)} of"
            f" {len(dependencies)} packages (e.g. {', '.join(skipped[:3])})"
            + (f"; {len(vulnerable)} vulnerable among the others" if vulnerable else "")
        )
    return result


def technical_checks(*, scanners: bool = True) -> dict[str, Any]:
    """All three; ``scanners`` False leaves bandit and pip-audit out (``not checked``)."""
    skipped = {"status": NOT_CHECKED, "reason": "scanners were not run for this review"}
    return {
        "deploy": deploy_check(),
        "bandit": bandit_scan() if scanners else skipped,
        "dependencies": dependency_scan() if scanners else skipped,
    }


def _item(requirement: str, title: str, status: str, evidence: str) -> dict[str, str]:
    return {"requirement": requirement, "title": title, "status": status, "evidence": evidence}


def _cards_encrypted() -> tuple[bool, int]:
    from payments.vault.selectors import active_cards_sealed

    return active_cards_sealed()


def pci_checklist(sections: dict[str, Any]) -> list[dict[str, str]]:
    """Each PCI DSS v4.0 requirement the platform addresses, its status from the
    evidence the other sections computed (``met``, ``not met`` or ``not checked``)."""
    access, auth = sections["access"], sections["authentication"]
    keys, integrity = sections["keys"], sections["integrity"]
    technical, incidents = sections["technical"], sections["incidents"]
    encrypted, cards = _cards_encrypted()
    bandit, deps = technical["bandit"], technical["dependencies"]
    playbooks = (Path(settings.BASE_DIR) / "docs" / "incident-response.md").exists()
    idle_minutes = settings.SESSION_COOKIE_AGE // 60

    def status(ok: bool) -> str:
        return MET if ok else NOT_MET

    return [
        _item(
            "2.2",
            "System components are configured securely",
            status(technical["deploy"]["clean"]) if settings.PRODUCTION else NOT_CHECKED,
            f"check --deploy: {technical['deploy']['status']} ({technical['deploy']['mode']}"
            " settings)",
        ),
        _item(
            "3.5.1",
            "Stored card numbers are unreadable",
            status(encrypted),
            f"{cards} active card(s), each AES-256-GCM ciphertext under a data key; no card"
            " number in clear (every active card's secret in the vault's own table)",
        ),
        _item(
            "3.6.4, 3.7.4",
            "Keys are changed at the end of their cryptoperiod",
            status(keys["overdue"] == 0),
            f"{len(keys['inventory'])} key(s): {keys['overdue']} overdue, {keys['due_soon']}"
            f" due soon; rotations in the period: {sum(keys['rotations'].values())}",
        ),
        _item(
            "6.2.4",
            "Software is checked for common coding vulnerabilities",
            NOT_CHECKED if bandit["status"] == NOT_CHECKED else status(bandit["high"] == 0),
            bandit.get("reason")
            or f"bandit: {bandit['findings']} finding(s), {bandit['high']} of high severity",
        ),
        _item(
            "6.3.3",
            "Known vulnerabilities of components are addressed",
            NOT_CHECKED if deps["status"] == NOT_CHECKED else status(not deps["vulnerable"]),
            deps.get("reason")
            or f"pip-audit: {len(deps['vulnerable'])} vulnerable of {deps['packages']} packages",
        ),
        _item(
            "7.2.4",
            "User accounts and privileges are reviewed",
            MET,
            f"this review's access review: {access['staff']} staff account(s),"
            f" {access['privileged']} privileged, {access['role_changes']} role change(s)",
        ),
        _item(
            "8.2.6",
            "Inactive accounts are removed or disabled within 90 days",
            status(access["dormant_enabled"] == 0),
            f"{access['dormant_enabled']} dormant account(s) still enabled,"
            f" {access['dormant_disabled']} disabled",
        ),
        _item(
            "8.2.8",
            "Idle sessions end within 15 minutes",
            status(idle_minutes <= 15),
            f"SESSION_IDLE_SECONDS: {settings.SESSION_COOKIE_AGE} s",
        ),
        _item(
            "8.3.4",
            "Accounts lock after at most 10 failed attempts",
            status(settings.AXES_FAILURE_LIMIT <= 10),
            f"AXES_FAILURE_LIMIT: {settings.AXES_FAILURE_LIMIT}; lockouts in the period:"
            f" {auth['lockouts']}",
        ),
        _item(
            "8.4.2",
            "MFA for all access to the cardholder data environment",
            status(access["without_second_factor"] == 0),
            f"{access['without_second_factor']} active staff account(s) without a second"
            " factor; the admin refuses a session without one",
        ),
        _item(
            "10.2.1",
            "Audit logs capture user activity",
            status(integrity["events_in_period"] > 0),
            f"{integrity['events_in_period']} event(s) in the period",
        ),
        _item(
            "10.3.4",
            "Audit logs are protected from modification",
            status(integrity["ok"]),
            f"chain verification: {'passed' if integrity['verification'].get('ok') else 'FAILED'};"
            f" {integrity['checkpoints']} signed checkpoint(s) in the period;"
            f" exported copies: {integrity.get('copies_matching', 0)} match,"
            f" {integrity.get('copies_mismatched', 0)} do not",
        ),
        _item(
            "12.10.1",
            "An incident response plan exists and is followed",
            status(playbooks),
            f"playbooks in docs/incident-response.md; {incidents['count']} incident(s) in the"
            f" period, {incidents['open']} open",
        ),
    ]
