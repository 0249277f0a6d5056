"""VAULT_DATABASE_URL: the vault alias as another role on the same database, or none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_settings import _load_settings

WEB = "postgres://tillit_web@127.0.0.1:5432/tillit"
SHOW = (
    "from django.conf import settings; v = settings.DATABASES.get('vault');"
    " print(settings.VAULT_DATABASE_ALIAS, v and v['USER'], v and v['ENGINE'],"
    " v and v['TEST']['MIRROR'], settings.VAULT_DATABASE_ROLE or '-')"
)


def test_the_vault_alias_connects_as_the_vault_role_to_the_same_database(tmp_path: Path) -> None:
    result = _load_settings(
        tmp_path,
        SHOW,
        DATABASE_URL=WEB,
        VAULT_DATABASE_URL="postgres://tillit_vault@127.0.0.1:5432/tillit",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "vault",
        "tillit_vault",
        "db.postgresql",
        "default",
        "tillit_vault",
    ]


def test_without_it_there_is_no_second_alias(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, SHOW, DATABASE_URL=WEB)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["default", "None", "None", "None", "-"]


@pytest.mark.parametrize(
    ("vault_url", "reason"),
    [
        ("postgres://tillit_vault@127.0.0.1:5432/other", "same database"),
        ("postgres://tillit_vault@10.0.0.9:5432/tillit", "same database, host and port"),
        ("postgres://tillit_web@127.0.0.1:5432/tillit", "another role"),
        ("sqlite:///vault.sqlite3", "needs PostgreSQL"),
        ("nosuchdb://x", "needs PostgreSQL"),
    ],
)
def test_a_vault_database_url_that_would_isolate_nothing_is_refused_by_name(
    tmp_path: Path, vault_url: str, reason: str
) -> None:
    result = _load_settings(tmp_path, DATABASE_URL=WEB, VAULT_DATABASE_URL=vault_url)
    assert result.returncode != 0
    assert "VAULT_DATABASE_URL" in result.stderr and reason in result.stderr
