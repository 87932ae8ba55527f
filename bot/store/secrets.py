"""Rotating credentials (EPM's single-use refresh token): the newest value of each, kept across restarts.

Values are stored as the Store seals them (bot/store/sealing.py: encrypted); these functions read and write
the stored form only."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.store.models import Secret
from bot.store.sealing import Sealer, missing_key

# INSERT ... ON CONFLICT DO UPDATE, in the two dialects the bot runs on
UPSERTS: dict[str, Callable[[type[Secret]], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}


def get_secret(s: Session, key: str) -> str | None:
    row = s.get(Secret, key)
    return row.value if row is not None else None


def put_secret(s: Session, key: str, value: str) -> None:
    """Store a secret's newest value. An upsert: `jobstatus-bot check` may store one while `run` does too."""
    insert = UPSERTS.get(s.get_bind().dialect.name)
    if insert is not None:
        stmt = insert(Secret).values(key=key, value=value)
        s.execute(stmt.on_conflict_do_update(index_elements=[Secret.key],
                                             set_={"value": stmt.excluded.value}))
    elif (row := s.get(Secret, key)) is None:
        s.add(Secret(key=key, value=value))
    else:
        row.value = value


def reseal_all(s: Session, sealer: Sealer) -> int:
    """Every row encrypted under the sealer's first key (see `Store.seal_secrets`); how many rows changed."""
    rows = list(s.scalars(select(Secret).order_by(Secret.key)))
    if rows and not sealer.ready:
        names = ", ".join(row.key for row in rows)
        raise missing_key(
            f"the database holds {len(rows)} stored secret(s) ({names}) and no key to protect them"
        )
    changed = 0
    for row in rows:
        sealed = sealer.reseal(row.value, row.key)
        if sealed is not None:
            row.value = sealed
            changed += 1
    return changed
