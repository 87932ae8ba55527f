"""Stage 2 of the notifier: with replicas on PostgreSQL, only the replica that holds a channel's lease sends
to it (bot/store/leases.py), so each watch's order and the channel's pace hold across replicas.

A lease is taken or renewed at each pass and again right before each claim. A channel just taken (perhaps
from a replica that died mid-send) starts with an empty bucket: its first post waits a whole gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.store import Store, leases

MARGIN = 0.8  # of a lease counted on: a margin for the clocks of host and database


class ChannelLeases:
    """This replica's send leases. `replica` None: alone, every channel is this process's."""

    def __init__(self, db: Store, replica: str | None, seconds: float,
                 taken_over: Callable[[str], None]) -> None:
        self.db = db
        self.replica = replica
        self.seconds = seconds
        self._taken_over = taken_over  # told of each channel this replica has just taken
        self._until: dict[str, float] = {}  # channel -> monotonic time this replica's lease runs out

    async def renew(self, channels: list[str]) -> None:
        """Take or renew the leases of these channels (alone: nothing to do)."""
        if self.replica is None or not channels:
            return
        start = time.monotonic()
        held = await self.db.run(leases.hold_channels, self.replica, self.seconds, channels)
        for channel in channels:
            if channel not in held:
                self._until.pop(channel, None)
                continue
            if self._until.get(channel, 0.0) <= start:
                self._taken_over(channel)
            self._until[channel] = start + self.seconds * MARGIN

    def mine(self, channel: str) -> bool:
        """Whether this process may send to the channel now."""
        return self.replica is None or self._until.get(channel, 0.0) > time.monotonic()
