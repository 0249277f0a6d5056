"""Login names, normalized once: for storage, for sign-in lookup and for the lockout alike.

A login name (a staff username or a customer's e-mail address) is compared as its
``normalize_login`` form: Unicode NFKC (compatibility forms folded: the ligature
U+FB01 -> ``fi``, full-width letters -> ASCII), then case folding (the long s U+017F
-> ``s``, ``ß`` -> ``ss``), then NFKC again (folding may leave a non-normalized
string). Accounts store the normalized form and sign-in looks it up exactly, so what
the lockout counts is exactly what can sign in: a look-alike either is the same key
("astrid" with a long s is ``astrid``) or names no account at all ("astrid" with a
dotless i, U+0131, stays itself).

Comparing in the database with ``UPPER`` (``iexact``) instead let both variants sign in
as ``astrid`` while the lockout counted them as other names (issue 17, item 5).
"""

from __future__ import annotations

import unicodedata

MAX_LOGIN_LENGTH = 254


def normalize_login(value: object) -> str:
    """The one form of a login name that is stored, looked up and counted."""
    text = str(value or "").strip()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return folded.strip()
