"""Alembic's environment: the revisions run on the connection `bot.store.schema.upgrade` passes in
`config.attributes["connection"]`, inside the transaction (and under the lock) it holds; no URL, no ini file.
The models' metadata is the target `alembic revision --autogenerate` compares a database with."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.store import models  # noqa: F401  (its tables make up SQLModel.metadata)


def run() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError("the migrations run through bot.store.schema, on a connection it passes in")
    # transactional_ddl: SQLite's DDL is transactional too (Alembic assumes not); the upgrade is one
    # transaction
    context.configure(connection=connection, target_metadata=SQLModel.metadata, transactional_ddl=True)
    with context.begin_transaction():  # the caller's transaction: nothing is committed here
        context.run_migrations()


run()
