"""Issue 27, item 8: job workers on several hosts share one Redis queue; each job runs once.

Two ``manage.py qcluster`` processes (two hosts, as far as the queue can tell), each in
its own process group with two workers, take jobs from one Redis server (Debian's
redis-server, started here on a free loopback port, never a shared one). Forty jobs
are queued; each runs exactly once, and both clusters did some of them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.tasks import async_task

from tests.cluster import JobCluster, wait_until
from tests.config.test_settings import _load_settings

JOBS = 40


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own on loopback (no disk, gone when the test ends)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "!!! redis-server IS NOT INSTALLED: the scale-out test did NOT run. scripts/test "
            "installs Debian's redis-server when run as root."
        )
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - Debian's redis-server, fixed arguments
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.from_url(url)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=20, what="the Redis server")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_two_clusters_on_one_redis_queue_run_each_job_once(
    redis_url: str,
    job_cluster: Callable[..., JobCluster],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = job_cluster(Q_REDIS_URL=redis_url, Q_WORKERS="2")
    second = job_cluster(Q_REDIS_URL=redis_url, Q_WORKERS="2")
    ran = tmp_path / "ran.txt"
    # This process queues the jobs as a web worker configured with Q_REDIS_URL would.
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    broker = Redis(list_key=Conf.CLUSTER_NAME)
    assert broker.ping()

    for number in range(JOBS):
        async_task("tests.deploy.jobs.note_run", number, str(ran), broker=broker)

    def lines() -> list[str]:
        return ran.read_text().splitlines() if ran.exists() else []

    wait_until(lambda: len(lines()) >= JOBS, timeout=90, what=f"{JOBS} jobs to run")
    time.sleep(1)  # a job run twice would show up now
    runs = Counter(int(entry.split()[0]) for entry in lines())
    clusters = {int(entry.split()[1]) for entry in lines()}
    assert runs == Counter(range(JOBS))  # every job, each exactly once
    assert clusters == {first.process.pid, second.process.pid}  # both hosts took work
    assert broker.queue_size() == 0


def test_a_redis_url_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    result = _load_settings(tmp_path, Q_REDIS_URL="127.0.0.1:6379")

    assert result.returncode != 0
    assert "Q_REDIS_URL must be a redis://" in result.stderr


def test_with_a_redis_url_the_cluster_takes_jobs_from_redis_not_the_table(
    tmp_path: Path,
) -> None:
    code = "from django.conf import settings as s; print(sorted(s.Q_CLUSTER))"
    result = _load_settings(tmp_path, code, Q_REDIS_URL="redis://127.0.0.1:6390/1")

    assert result.returncode == 0, result.stderr
    keys = result.stdout.strip().splitlines()[-1]
    assert "'redis'" in keys and "'orm'" not in keys and "'broker_class'" not in keys
