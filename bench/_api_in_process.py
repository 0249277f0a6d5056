"""bench/api.py's comparison without the HTTP server: the API's requests through Django's
WSGI handler in the bench's own process, alternating round by round with the same
operations through the services (the floor), and the API's stack priced one layer at a
time around an empty view (``bench/_api_layers.py``)."""

from __future__ import annotations

import gc
import io
import json
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.payments import PORT


def in_process(
    token: str, *, count: int, rounds: int, body: dict[str, Any], floor: Callable[[], Any]
) -> dict[str, Any]:
    """The API without the HTTP server: its requests through Django's WSGI handler in this
    process, alternating round by round with the floor (so both see the same machine), CPU
    per create-and-finalize (median of the rounds); and what each layer of the API's stack
    costs per request (``bench/_api_layers.py``: the stack with an empty view, one layer
    added at a time)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from bench._api_layers import LAYERS

    handler = WSGIHandler()

    def request(method: str, path: str, payload: Any = None) -> Any:
        raw = json.dumps(payload or {}).encode() if method == "POST" else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(PORT),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": f"127.0.0.1:{PORT}",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_ACCEPT": "application/json",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "HTTP_IDEMPOTENCY_KEY": secrets.token_hex(16),
            "wsgi.input": io.BytesIO(raw),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status: list[str] = []

        def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(line)
            return lambda _data: None

        result = handler(environ, start_response)
        try:
            answer = b"".join(result)
        finally:
            result.close()  # Django's request_finished, as a WSGI server closes it
        if not status[0].startswith("2"):
            raise RuntimeError(f"{method} {path}: {status[0]} {answer[:200]!r}")
        return json.loads(answer)

    def through_api() -> None:
        draft = request("POST", "/api/v1/invoices", body)
        request("POST", f"/api/v1/invoices/{draft['id']}/finalize")

    runs: dict[str, Any] = {"api": through_api, "floor": floor}
    for name in LAYERS:
        runs[name] = lambda name=name: request("POST", f"/api/v1/_layers/{name}", body)
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    with override_settings(ROOT_URLCONF="bench._api_layers"):
        for run in runs.values():
            for _ in range(10):
                run()
        # As config/wsgi.py does in every worker: what start-up made, out of the collector's way.
        gc.collect()
        gc.freeze()
        for _ in range(rounds):
            for name, run in runs.items():
                started = time.process_time()
                for _ in range(count):
                    run()
                cpu[name].append(1000 * (time.process_time() - started) / count)
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    layers, below = {}, 0.0
    for name in LAYERS:
        layers[name] = round(medians[name] - below, 3)
        below = medians[name]
    return {
        "api_ms": round(medians["api"], 2),
        "floor_ms": round(medians["floor"], 2),
        "api_own_cost": round((medians["api"] - medians["floor"]) / medians["floor"], 3),
        "stack_per_request_ms": round(medians[LAYERS[-1]], 3),
        "stack_share_of_floor": round(2 * medians[LAYERS[-1]] / medians["floor"], 3),
        "layers_ms": layers,
    }
