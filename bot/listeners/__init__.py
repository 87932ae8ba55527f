"""Bolt listeners: the /jobstatus slash command and the buttons on watch messages."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands
from bot.watching import Watching


def register(app: AsyncApp, watching: Watching) -> None:
    commands.register(app, watching)
    actions.register(app, watching)
