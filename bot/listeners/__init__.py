"""Bolt listeners: the /jobstatus slash command and the buttons on watch messages, registered on the app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners.actions import BUTTONS, Buttons
from bot.listeners.commands import Commands
from bot.watching import Watching


def register(app: AsyncApp, watching: Watching) -> None:
    app.command("/jobstatus")(Commands(watching).jobstatus)
    app.action(BUTTONS)(Buttons(watching).clicked)
