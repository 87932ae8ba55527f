"""Bolt listeners: the /jobstatus slash command and the buttons on watch messages, registered on the app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.backends.slots import users_first
from bot.listeners.actions import BUTTONS, Buttons
from bot.listeners.commands import Commands
from bot.watching import Watching


def register(app: AsyncApp, watching: Watching) -> None:
    # a user's request goes ahead of scheduled polls: for a backend's slots, and on the event loop
    app.command("/jobstatus")(users_first(Commands(watching).jobstatus))
    app.action(BUTTONS)(users_first(Buttons(watching).clicked))
