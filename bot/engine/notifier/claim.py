"""Stage 4 of the notifier: a message is claimed (attempts+1, committed before the Slack call, so a crash in
between leaves it owed and the next send looks for it first), and only when it is its turn: nothing of a
watch goes before its parent is posted."""

from __future__ import annotations

from bot import store
from bot.domain.jobs import OutboxKind
from bot.engine.notifier.outcome import GONE, Result
from bot.store import OwedMessage, Store


class Claim:
    def __init__(self, db: Store) -> None:
        self.db = db

    async def due(self, outbox_id: int) -> OwedMessage | Result | None:
        """The row as it is, before its channel's turn is waited for: GONE when another path sent it, None
        when it must wait for its watch's parent."""
        row = await self.db.run(store.peek, outbox_id)
        if row is None:
            return GONE
        if row.kind is not OutboxKind.PARENT and row.parent_ts is None:
            return None
        return row

    async def __call__(self, outbox_id: int) -> OwedMessage | Result | None:
        """Claim the row for one send: GONE when it went meanwhile, None when its parent was forgotten
        meanwhile (it is released, owed as it was)."""
        item = await self.db.run(store.claim, outbox_id)
        if item is None:
            return GONE
        if item.kind is not OutboxKind.PARENT and item.parent_ts is None:
            await self.db.run(store.release, item.id)
            return None
        return item
