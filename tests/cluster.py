"""A real django-q2 cluster for a test: ``manage.py qcluster`` in a process group of its own,
on the test's (committed) database, with the test's settings given as environment.

Tests that use it are transactional (``django_db(transaction=True)``): the cluster's
processes see only what the test has committed. ``job_cluster(**env)`` starts one and
waits until its workers are up; ``cluster.kill()`` is a crash (SIGKILL to every process
of the cluster), ``cluster.stop()`` a clean stop (SIGTERM). Every cluster a test started
is stopped when it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``condition`` every 0.1 s until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class JobCluster:
    """One ``manage.py qcluster`` process group."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() reaches every worker
            )

    def ready(self) -> bool:
        return b"ready for work" in self.log.read_bytes()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has already gone
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """A crash: every process of the cluster dies at once, mid-job."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM to qcluster, as an init system sends it), then SIGKILL for
        whatever is left. (SIGTERM to every process at once leaves qcluster waiting for a
        sentinel that is already gone.)"""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self._signal(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=30)


@pytest.fixture
def job_cluster(tmp_path: Path) -> Iterator[Callable[..., JobCluster]]:
    """``job_cluster(Q_RETRY="4", ...)``: start a cluster of 2 workers on the test database
    with these settings (environment variables), once its workers are up."""
    started: list[JobCluster] = []

    def start(**overrides: str) -> JobCluster:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_URL", "TILLIT_MODE", "PYTEST", "EMAIL_"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": _database_url(),
                "DATABASE_CONN_MAX_AGE": "0",
                "SECRET_KEY": str(settings.SECRET_KEY),  # the jobs the test enqueues are signed
                "TILLIT_VAR_DIR": str(tmp_path / "cluster-var"),
                "Q_WORKERS": "2",
                "LOG_LEVEL_JOBS": "INFO",
            }
        )
        if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
            env.update(
                {"EMAIL_HOST": str(settings.EMAIL_HOST), "EMAIL_PORT": str(settings.EMAIL_PORT)}
            )
        env.update(overrides)
        cluster = JobCluster(env, tmp_path / f"qcluster-{len(started) + 1}.log")
        started.append(cluster)
        wait_until(cluster.ready, timeout=60, what="the cluster's workers")
        return cluster

    from django_q.models import Schedule

    # The cluster runs only what the test enqueues, not the schedules a migrate registered.
    Schedule.objects.all().delete()
    yield start
    for cluster in started:
        cluster.stop()
