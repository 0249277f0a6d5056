"""``next`` after sign-in, a second factor or the language switch: only a path on this site."""

from __future__ import annotations

import pytest

from security.redirects import MAX_NEXT_LENGTH, UnsafeRedirect, local_path


@pytest.mark.parametrize(
    "path",
    ["/", "/portal/", "/portal/invoices/7/?status=open&q=F-1", "/portal/invoices/7/#lines"],
)
def test_a_path_on_this_site_is_followed(path: str) -> None:
    assert local_path(path) == path


@pytest.mark.parametrize(
    "tampered",
    [
        "https://evil.example/portal/",
        "http://127.0.0.1:8000/portal/",  # even our own host: a path is all a link needs
        "//evil.example/portal/",
        "/\\evil.example/portal/",
        "\\\\evil.example",
        "///evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "portal/",
        " /portal/",
        "/portal/\x00",
        "/portal/\r\nSet-Cookie: x=1",
        "/" + "a" * MAX_NEXT_LENGTH,
    ],
)
def test_anything_else_is_refused_naming_next(tampered: str) -> None:
    with pytest.raises(UnsafeRedirect) as refused:
        local_path(tampered)
    assert str(refused.value).startswith("next:")
