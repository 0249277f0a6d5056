"""config/gunicorn.conf.py: gunicorn accepts it, and a worker freezes the loaded project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "config" / "gunicorn.conf.py"


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TILLIT_VAR_DIR": str(tmp_path)}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(  # noqa: S603 (fixed arguments)
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_gunicorn_accepts_the_config(tmp_path: Path) -> None:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    done = _run([gunicorn, "--check-config", "-c", str(CONF), "config.wsgi:application"], tmp_path)
    assert done.returncode == 0, done.stderr


def test_worker_init_freezes_what_the_project_loaded(tmp_path: Path) -> None:
    code = (
        "import gc, runpy, django; django.setup();"
        f" hooks = runpy.run_path({str(CONF)!r});"
        " before = gc.get_freeze_count(); hooks['post_worker_init'](None);"
        " print(before, gc.get_freeze_count(), gc.get_threshold()[0])"
    )
    done = _run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    before, frozen, young = (int(n) for n in done.stdout.split())
    assert before == 0
    # Django, the project's apps and their dependencies: well over 50,000 objects.
    assert frozen > 50_000
    assert young == 700  # the collector's thresholds stay Python's own
