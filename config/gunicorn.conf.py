"""Gunicorn settings for serving Tillit.

    gunicorn config.wsgi:application -c config/gunicorn.conf.py --workers 2 --bind ...

Bind address and workers are given on the command line as usual.

Garbage collection (docs/decisions.md, 24): once a worker has loaded the project,
the objects it keeps for its whole life (modules, classes, URL patterns, settings:
about 130,000 on a worker) are frozen out of the collector's reach. A full
collection in the middle of a request then walks only what was made since.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """After the worker imported the project: collect once, then freeze what is left."""
    gc.collect()
    gc.freeze()
