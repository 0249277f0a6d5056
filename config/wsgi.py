"""WSGI entry point."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# The URL configuration imports every view and what the views import (the PDF
# stack among them: about 500 modules, 1.2 s on a 2-core VM). Left to itself Django
# loads it at a worker's first request, which then waits for it; here it is loaded
# with the process, and its reverse lookup built.
get_resolver().reverse_dict  # noqa: B018 (the property builds the lookup)
# Everything loaded so far (Django, the apps, their modules) lives as long as the
# process: out of the collector's way, so a full collection in the middle of a
# request walks only what requests made (docs/decisions.md, 24).
gc.collect()
gc.freeze()
