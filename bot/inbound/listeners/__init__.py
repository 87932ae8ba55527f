"""Bolt listeners: the /jobstatus slash command, the buttons on watch messages and on the Home tab, the Home
tab's event, the "Watch a job" shortcuts and their modal, registered on the app."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.backends.slots import UsersFirst
from bot.inbound.home import HomeTab
from bot.inbound.listeners.actions import BUTTONS, Buttons
from bot.inbound.listeners.commands import Commands
from bot.inbound.listeners.surfaces import Surfaces
from bot.operations.watching import Watching
from bot.rendering import views


def register(app: AsyncApp, watching: Watching, home: HomeTab, users: UsersFirst) -> None:
    users_first = users.users_first
    # each serves a user: it goes ahead of scheduled polls, for a backend's slots and on the event loop
    app.command("/jobstatus")(users_first(Commands(watching).jobstatus))
    app.action(BUTTONS)(users_first(Buttons(watching, home).clicked))
    surfaces = Surfaces(watching, home)
    app.event("app_home_opened")(users_first(surfaces.home_opened))
    app.shortcut(views.GLOBAL_SHORTCUT)(users_first(surfaces.shortcut))
    app.shortcut(views.MESSAGE_SHORTCUT)(users_first(surfaces.shortcut))
    app.view(views.WATCH_MODAL)(users_first(surfaces.submitted))
