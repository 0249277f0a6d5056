"""Where a page may send the browser next: only to a path on this site.

Sign-in, the second-factor pages and the language switch carry a ``next`` parameter
that anyone can write into a link. Only a local path ("/portal/invoices/7/") is
followed: no scheme, no host, no "//host" or "/\\host" that browsers read as another
site, no control characters. Anything else is refused by name (``next``), never
silently rewritten, so a tampered link is noticed instead of half-obeyed.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from security.exceptions import SecurityError


class UnsafeRedirect(SecurityError):
    """A ``next`` that is not a path on this site."""

    field = "next"


MAX_NEXT_LENGTH = 2000


def local_path(candidate: str) -> str:
    """``candidate`` when it is a path on this site; UnsafeRedirect naming ``next`` if not."""
    if (
        len(candidate) <= MAX_NEXT_LENGTH
        and candidate.startswith("/")
        and not candidate.startswith(("//", "/\\"))
        and not any(ord(char) < 32 or ord(char) == 127 for char in candidate)
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts=set())
    ):
        return candidate
    raise UnsafeRedirect(_("next: only a page of this site can follow, such as /portal/."))


def next_path(request: HttpRequest, default: str) -> str:
    """The request's ``next`` (form field, else query parameter) when it is a local path,
    ``default`` when there is none; UnsafeRedirect when it leads anywhere else."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    return local_path(candidate) if candidate else default
