"""The review's long tables as aligned rows of monospaced text (audit.reviews.document)."""

from __future__ import annotations

from audit.reviews.document import accounts_table, aligned_rows


def test_fields_are_padded_to_their_columns_widest_and_the_last_is_left_as_it_is() -> None:
    table = aligned_rows(
        ["#", "When", "By"],
        [
            [("7", False), ("2026-07-01", False), ("sofia", False)],
            [("1234", False), ("2026-07-02", True), ("a long free text", False)],
        ],
    )

    assert table["head"] == "#     When        By"
    assert table["rows"] == [
        [("7     ", False), ("2026-07-01  ", False), ("sofia", False)],
        [("1234  ", False), ("2026-07-02  ", True), ("a long free text", False)],
    ]


def test_a_field_longer_than_its_cap_is_printed_whole_and_widens_no_other_row() -> None:
    long_name = "x" * 40
    table = aligned_rows(
        ["Account", "State"],
        [[(long_name, False), ("active", False)], [("ann", False), ("dormant", True)]],
        caps=[10],
    )

    assert table["rows"][0][0] == (long_name + "  ", False)
    assert table["rows"][1][0] == ("ann".ljust(10) + "  ", False)


def test_an_account_row_emphasises_a_missing_second_factor_and_dormancy() -> None:
    account = {
        "username": "doris",
        "roles": ["Accountant", "Auditor"],
        "active": True,
        "last_login": None,
        "second_factor": False,
        "privileged": False,
        "superuser": False,
        "dormant": True,
    }

    (row,) = accounts_table({"accounts": [account]})["rows"]

    assert [text.strip() for text, _strong in row] == [
        "doris",
        "never",
        "no",
        "—",
        "dormant",
        "Accountant, Auditor",
    ]
    assert [strong for _text, strong in row] == [False, False, True, False, True, False]


def test_the_rows_are_in_the_readers_language() -> None:
    from django.utils import translation

    account = {
        "username": "doris",
        "roles": [],
        "active": True,
        "last_login": None,
        "second_factor": True,
        "privileged": False,
        "superuser": False,
        "dormant": False,
    }
    with translation.override("sv"):
        table = accounts_table({"accounts": [account]})

    assert table["head"].startswith("Konto")
    assert [text.strip() for text, _strong in table["rows"][0]][1:3] == ["aldrig", "ja"]
