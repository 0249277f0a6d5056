"""The portal's card payments as a browser sends them, for bench/payments.py: a signed-in
session per payer, and an open-loop load generator that posts payments on schedule."""

from __future__ import annotations

import http.client
import os
import re
import selectors
import socket
import statistics
import threading
import time
import urllib.parse
from typing import Any

PORT = int(os.environ.get("BENCH_PORT", "8765"))
PASSWORD = "bench-Password-2026-x"  # noqa: S105 (a throwaway account of the bench database)


class Session:
    """A signed-in browser session over one keep-alive connection per thread."""

    def __init__(self, username: str, address: str) -> None:
        self.address = address  # the payer's own, as the reverse proxy passes it on
        self.cookies: dict[str, str] = {}
        self.local = threading.local()
        status, _, body = self.request("GET", "/account/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        assert token, f"no login form ({status})"
        status, _headers, _ = self.request(
            "POST",
            "/account/login/",
            {
                "csrfmiddlewaretoken": token.group(1).decode(),
                "username": username,
                "password": PASSWORD,
            },
        )
        assert status == 302, f"login failed: {status}"

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
            self.local.conn = conn
        return conn

    def request(
        self, method: str, path: str, form: dict[str, object] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        body = urllib.parse.urlencode(form or {}).encode() if form is not None else None
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "X-Forwarded-For": self.address,
        }
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{PORT}{path}"
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.local.conn = None
            raise
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, val = cookie.partition("=")
                self.cookies[key] = val
        return response.status, dict(response.getheaders()), data


_LOCATION = re.compile(rb"\r\nlocation: ([^\r]*)", re.IGNORECASE)
_TIMEOUT_S = 30.0


def _answer(data: bytes) -> tuple[int, bytes]:
    """(status, Location) of a whole HTTP answer."""
    head = data.split(b"\r\n\r\n", 1)[0]
    found = _LOCATION.search(head)
    return int(head[9:12]), found.group(1) if found else b""


def run_rate(
    sessions: list[Session], ids: list[tuple[int, int]], cards: list[int], rate: int
) -> dict[str, object]:
    """Send len(ids) payments at ``rate`` per second (open loop); latency per request.

    One thread and non-blocking sockets (``selectors``): the load generator's own CPU
    counts against the same two cores as the server's, and a thread per request in
    flight cost it twice as much. Each request is sent on its own connection at its
    time, whatever the answers to the earlier ones; its latency runs from its
    connection's opening to the server's closing it after the answer.
    """
    requests = []
    for payer, invoice_id in ids:
        session = sessions[payer]
        cookies = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        path = f"/portal/invoices/{invoice_id}/pay/"
        body = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
                "amount": "100.00",
                "payment_method": cards[payer],
                "idempotency_key": f"bench-{invoice_id}-{rate}",
            }
        ).encode()
        requests.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nCookie: {cookies}\r\n"
                f"X-Forwarded-For: {session.address}\r\n"
                f"Referer: http://127.0.0.1:{PORT}{path}\r\nConnection: close\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
    latencies: list[float] = []
    errors: list[str] = []
    selector = selectors.DefaultSelector()
    # socket -> [started, request bytes left to send, answer chunks]
    flying: dict[socket.socket, list[Any]] = {}

    def finish(sock: socket.socket, problem: str = "") -> None:
        started, _left, chunks = flying.pop(sock)
        selector.unregister(sock)
        sock.close()
        if not problem:
            status, location = _answer(b"".join(chunks))
            ok = status == 302 and b"/portal/payments/" in location
            problem = "" if ok else f"HTTP {status}"
        latencies.append((time.perf_counter() - started) * 1000)
        if problem:
            errors.append(problem)

    begin = time.perf_counter()
    sent = 0
    while sent < len(requests) or flying:
        now = time.perf_counter()
        while sent < len(requests) and begin + sent / rate <= now:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", PORT))
            flying[sock] = [time.perf_counter(), requests[sent], []]
            selector.register(sock, selectors.EVENT_WRITE)
            sent += 1
        wait = begin + sent / rate - time.perf_counter() if sent < len(requests) else 1.0
        for key, _events in selector.select(max(wait, 0)):
            sock = key.fileobj  # type: ignore[assignment]
            state = flying[sock]
            try:
                if state[1]:
                    state[1] = state[1][sock.send(state[1]) :]
                    if not state[1]:
                        selector.modify(sock, selectors.EVENT_READ)
                elif chunk := sock.recv(65536):
                    state[2].append(chunk)
                else:
                    finish(sock)
            except OSError as exc:
                finish(sock, type(exc).__name__)
        if sent == len(requests):
            late = time.perf_counter() - _TIMEOUT_S
            for sock in [s for s, state in flying.items() if state[0] < late]:
                finish(sock, "Timeout")
    wall = time.perf_counter() - begin
    selector.close()
    latencies.sort()
    # A payment counts as done when its invoice was charged: an answer that shows a
    # payment refused by the risk rules (or declined) is a redirect too.
    from payments.models import Payment

    charged = Payment.objects.filter(invoice_id__in=[invoice for _payer, invoice in ids])
    refused = len(ids) - len(errors) - charged.captured().count()
    errors += ["not charged (refused by the risk rules or declined)"] * max(refused, 0)
    return {
        "rate": rate,
        "sent": len(ids),
        "throughput_per_s": round((len(ids) - len(errors)) / wall, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }
