"""Settings fail loudly on bad values and refuse an unsafe production start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(
    tmp_path: Path, _code: str = "print('loaded')", **overrides: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TILLIT_", "DATABASE_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"))
    }
    env.update({"TILLIT_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"})
    env.update(overrides)
    return subprocess.run(  # noqa: S603 (the test's own fixed code)
        [sys.executable, "-c", f"import django; django.setup(); {_code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_unknown_mode_is_refused_by_name(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, TILLIT_MODE="staging")
    assert result.returncode != 0
    assert "TILLIT_MODE" in result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, TILLIT_MODE="production", ALLOWED_HOSTS="billing.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_debug(tmp_path: Path) -> None:
    result = _load_settings(
        tmp_path,
        TILLIT_MODE="production",
        SECRET_KEY="k" * 60,
        ALLOWED_HOSTS="billing.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/tillit",
        DEBUG="true",
    )
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


def test_a_bad_database_url_is_refused_by_name(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, DATABASE_URL="nosuchdb://x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_the_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("f" * 64, encoding="utf-8")
    result = _load_settings(
        tmp_path,
        TILLIT_MODE="production",
        SECRET_KEY_FILE=str(key_file),
        ALLOWED_HOSTS="billing.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/tillit",
    )
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_the_demo_generates_its_secret_key_once(tmp_path: Path) -> None:
    assert _load_settings(tmp_path).returncode == 0
    first = (tmp_path / "secret_key").read_text(encoding="utf-8")
    assert _load_settings(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text(encoding="utf-8") == first
    assert len(first) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_malformed_boolean_is_refused(tmp_path: Path, value: str) -> None:
    result = _load_settings(tmp_path, DEBUG=value)
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("postgres://tillit@127.0.0.1:5432/tillit", "127.0.0.1"),
        ("postgres://tillit@/tillit?host=/var/run/postgresql", "/var/run/postgresql"),
    ],
)
def test_a_postgresql_url_over_tcp_or_the_unix_socket_gets_the_projects_engine(
    tmp_path: Path, url: str, host: str
) -> None:
    result = _load_settings(
        tmp_path,
        "from django.conf import settings; d = settings.DATABASES['default'];"
        " print(d['ENGINE'], d['HOST'] or d['OPTIONS'].get('host'), d['NAME'])",
        DATABASE_URL=url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["db.postgresql", host, "tillit"]


def test_the_wsgi_application_loads_every_view_and_freezes_it(tmp_path: Path) -> None:
    # config/wsgi.py: a worker's first request must find nothing left to import, and
    # what the process loaded out of the garbage collector's way (decisions.md, 24).
    result = _load_settings(
        tmp_path,
        "import gc, sys; import config.wsgi; from django.urls import resolve, reverse;"
        " frozen, loaded = gc.get_freeze_count(), set(sys.modules);"
        " resolve('/portal/invoices/1/pay/'); reverse('portal_pay:pay', args=[1]);"
        " print(frozen, len(set(sys.modules) - loaded), 'payments.portal.views' in loaded)",
    )

    assert result.returncode == 0, result.stderr
    frozen, imported_by_the_request, views_loaded = result.stdout.split()
    assert views_loaded == "True"
    assert imported_by_the_request == "0"
    # Django, the apps, the views and what they import: well over 100,000 objects.
    assert int(frozen) > 100_000


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"Q_TIMEOUT": "60", "Q_RETRY": "60"}, "Q_RETRY"),  # a running job would run twice
        ({"Q_TIMEOUT": "45", "Q_LONG_TIMEOUT": "30"}, "Q_LONG_TIMEOUT"),
        ({"Q_MAX_ATTEMPTS": "0"}, "Q_MAX_ATTEMPTS"),
        ({"DELIVERY_SENDING_TIMEOUT_SECONDS": "40"}, "DELIVERY_SENDING_TIMEOUT_SECONDS"),
        ({"EMAIL_TIMEOUT": "soon"}, "EMAIL_TIMEOUT"),
    ],
)
def test_job_and_delivery_timings_that_cannot_work_are_refused_by_name(
    tmp_path: Path, overrides: dict[str, str], named: str
) -> None:
    result = _load_settings(tmp_path, **overrides)
    assert result.returncode != 0
    assert named in result.stderr


def test_the_job_timings_reach_the_cluster(tmp_path: Path) -> None:
    result = _load_settings(
        tmp_path,
        "from django.conf import settings; q = settings.Q_CLUSTER; "
        "print(q['timeout'], q['retry'], q['max_attempts'])",
        Q_TIMEOUT="20",
        Q_RETRY="30",
        Q_MAX_ATTEMPTS="3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20", "30", "3"]


def _production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "TILLIT_MODE": "production",
        "SECRET_KEY": "k" * 60,
        "ALLOWED_HOSTS": "billing.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/tillit",
        **overrides,
    }


_OIDC = (
    "from django.conf import settings; p = settings.OAUTH2_PROVIDER;"
    " print(p['OIDC_ENABLED'], len(p['OIDC_RSA_PRIVATE_KEYS_INACTIVE']))"
)


def test_production_serves_oidc_once_its_first_key_is_made(tmp_path: Path) -> None:
    """A key file the settings name but nothing has made yet: OAuth 2.0 without OpenID
    Connect (production makes no key by itself). Once the first key is there, and again
    after a rotation, the settings serve it, the retired key published beside it. (The
    files as ``security.services.oidc_keys.rotate_signing_key`` writes them:
    tests/security/test_oidc_keys.py.)"""
    from datetime import UTC, datetime

    from security.oidc_key_files import (
        create_key_file,
        new_private_key_pem,
        replace_key_file,
        retire_key,
    )

    key = tmp_path / "keys" / "oidc_rsa.pem"
    env = _production(tmp_path, OIDC_RSA_PRIVATE_KEY_FILE=str(key))
    before = _load_settings(tmp_path, _OIDC, **env)
    assert before.returncode == 0, before.stderr
    assert before.stdout.split()[-2:] == ["False", "0"]
    assert not key.exists()
    create_key_file(key)
    first = _load_settings(tmp_path, _OIDC, **env)
    assert first.stdout.split()[-2:] == ["True", "0"], first.stderr
    retire_key(key.parent / "oidc-retired", key.read_text(), at=datetime.now(UTC))
    replace_key_file(key, new_private_key_pem())
    after = _load_settings(tmp_path, _OIDC, **env)
    assert after.stdout.split()[-2:] == ["True", "1"], after.stderr


def test_an_unreadable_oidc_key_file_is_refused_by_name(tmp_path: Path) -> None:
    key = tmp_path / "oidc_rsa.pem"
    key.mkdir()  # exists, but cannot be read as a file
    result = _load_settings(tmp_path, **_production(tmp_path, OIDC_RSA_PRIVATE_KEY_FILE=str(key)))
    assert result.returncode != 0
    assert "OIDC_RSA_PRIVATE_KEY_FILE" in result.stderr
