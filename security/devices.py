"""Readable names for the browsers and devices of signed-in sessions.

A session remembers the browser's raw User-Agent header. People recognise "Firefox 128
on Windows 10" or "Mobile Safari 17 on iPhone (iOS 17.5)", not the header, so the
sessions list names each one through ua-parser (the uap-core rules that browser
statistics use; ``ua-parser-builtins`` ships them precompiled). Parsing the same header
twice costs nothing: the answers are kept per process.
"""

from __future__ import annotations

from functools import lru_cache

from django.utils.translation import gettext as _
from ua_parser import parse

# Device families that say nothing a person would recognise beyond the system.
_GENERIC_DEVICES = frozenset({"Other", "Mac", "Spider", "Generic Smartphone", "Generic Tablet"})


@lru_cache(maxsize=512)
def _parts(user_agent: str) -> tuple[str, str, str]:
    """(browser, system, device) as named by ua-parser; empty where it found none."""
    result = parse(user_agent[:512])
    browser = system = device = ""
    if result.user_agent is not None and result.user_agent.family != "Other":
        browser = " ".join(filter(None, [result.user_agent.family, result.user_agent.major]))
    if result.os is not None and result.os.family != "Other":
        version = ".".join(filter(None, [result.os.major, result.os.minor]))
        system = " ".join(filter(None, [result.os.family, version]))
    if result.device is not None and result.device.family not in _GENERIC_DEVICES:
        device = result.device.family
    return browser, system, device


def device_name(user_agent: str | None) -> str:
    """ "Firefox 128 on Windows 10", "Mobile Safari 17 on iPhone (iOS 17.5)", or
    "Unknown browser" for a header that names nothing recognisable, in the reader's
    language."""
    browser, system, device = _parts(user_agent or "")
    if device and system:
        system = _("%(device)s (%(system)s)") % {"device": device, "system": system}
    else:
        system = system or device
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown browser")
