"""The tests' PostgreSQL: one throwaway cluster per session (bot/offline/postgres.py), a database per test.

`postgres_cluster` (session) starts the cluster once and stops it at the end; `postgres_url` (per test)
creates an empty database in it and drops it after the test. When PostgreSQL cannot be started the tests
that need it fail with the reason under CI (`CI=true`) and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from bot.offline.postgres import SUPERUSER, PostgresCluster, PostgresUnavailable

__all__ = ["SUPERUSER", "PostgresCluster", "PostgresUnavailable", "postgres_cluster", "postgres_url",
           "unavailable"]


def unavailable(reason: str) -> None:
    """Fail under CI (PostgreSQL is part of what CI proves); skip, saying why, on a developer's machine."""
    message = f"PostgreSQL tests cannot run: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg driver is not installed (pip install -e '.[test]')")
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    try:
        cluster.start()
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        cluster.stop()
        unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """An empty database of its own for one test, dropped afterwards."""
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)
