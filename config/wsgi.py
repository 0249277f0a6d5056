"""WSGI entry point."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Everything loaded so far (Django, the apps, their modules) lives as long as the
# process: out of the collector's way, so a full collection in the middle of a
# request walks only what requests made (docs/benchmarks.md, "Payments").
gc.freeze()
