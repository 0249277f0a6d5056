"""Webhook tests: a real HTTP receiver on 127.0.0.1, a fresh keyring, a security officer
with a fresh second factor, and endpoints registered through the service."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group

from billing.webhooks import services
from billing.webhooks.models import WebhookEndpoint
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.factories import make_user
from tests.mfa_helpers import stepped_up_request as stepped_up

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def documented_verifier() -> Callable[..., bool]:
    """The receivers' verification function, read from docs/webhooks.md's code block (so
    the documentation cannot drift from what is tested)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "docs/webhooks.md lost its verification function"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own doc
    verify: Callable[..., bool] = namespace["verify_tillit_signature"]
    return verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got; ``answers`` are the statuses it gives next (then 200)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    location: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.location or f"{state.url}elsewhere")
            answer = b"<script>alert(1)</script> received" if status >= 500 else b"ok"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def webhook_keyring(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Each test seals secrets under its own keyring file, never the demo's."""
    path = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = path
    settings.VAULT_KEYRING_CREATE = True
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOKS_TIMEOUT_SECONDS = 5
    forget_cached_keyrings()
    yield path
    forget_cached_keyrings()


@pytest.fixture
def officer(db: None) -> User:
    """Sofia, a security officer: she registers integrations."""
    user = make_user("sofia", is_staff=True)
    user.groups.add(Group.objects.get(name="Security officer"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def register(officer: User) -> Callable[..., tuple[WebhookEndpoint, str]]:
    """Register an endpoint through the service, as Sofia: (endpoint, its secret)."""

    def build(url: str, events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
        return services.create_webhook_endpoint(
            url=url,
            events=events or ["invoice.finalized", "invoice.paid"],
            description="ERP",
            by=officer,
            request=stepped_up(officer),
        )

    return build
