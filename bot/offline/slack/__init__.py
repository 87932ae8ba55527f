"""The fake Slack: Web API, response_url and upload server (webapi), Socket Mode (socket_mode), the simulated
person (user), the plain-text view (render), Block Kit checks (blockkit) and what is recorded (records)."""

from bot.offline.slack.records import (
    Call,
    Change,
    Channel,
    Envelope,
    Ephemeral,
    FakeFile,
    Message,
    ResponsePost,
    SocketAck,
    SocketConnection,
    User,
)
from bot.offline.slack.render import ButtonRef, RenderedChannel, mrkdwn_to_plain, render_channel
from bot.offline.slack.user import ClickResult, CommandResult, InteractionResult, SlackUser
from bot.offline.slack.webapi import DEFAULT_APP_TOKEN, DEFAULT_TOKEN, FakeSlack, SlackApiFault

__all__ = [
    "DEFAULT_APP_TOKEN",
    "DEFAULT_TOKEN",
    "ButtonRef",
    "Call",
    "Change",
    "Channel",
    "ClickResult",
    "CommandResult",
    "Envelope",
    "Ephemeral",
    "FakeFile",
    "FakeSlack",
    "InteractionResult",
    "Message",
    "RenderedChannel",
    "ResponsePost",
    "SlackApiFault",
    "SlackUser",
    "SocketAck",
    "SocketConnection",
    "User",
    "mrkdwn_to_plain",
    "render_channel",
]
