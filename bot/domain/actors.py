"""Who acts on a watch, as the database holds it: a Slack user id, or an HTTP API client's name behind a
prefix (a watch's user, who stopped it), and the pair a thread names as watching. Rendering them is
bot/rendering/messages.py's `who`."""

from __future__ import annotations

# A watch's user, or who stopped it, when a client of the HTTP API did (bot/inbound/api.py).
API_ACTOR = "api:"


def api_actor(token_name: str) -> str:
    """Who acted, for an HTTP API client: stored where a Slack user id would be (a watch's user)."""
    return API_ACTOR + token_name


def watcher(user: str, mention: str | None) -> str:
    """Who a thread names as watching: who started the watch and, for an API client that named one, the
    Slack user it mentions (store.Watch.watcher). Neither a user id nor a token name holds a space."""
    return user if mention is None else f"{user} {mention}"
