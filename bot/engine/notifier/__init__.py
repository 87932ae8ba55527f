"""Sends what the outbox owes to Slack: in order per watch, paced per channel, retried, and only once.

A pipeline of small stages composed in one place (bot/engine/notifier/notifier.py): order → lease →
pace/budget → claim → send → outcome, each in a module of its own with its reasons; the token halt and a Slack
outage's log lines beside them.
"""

from bot.engine.notifier.halt import Halted
from bot.engine.notifier.notifier import Notifier
from bot.engine.notifier.order import Turns
from bot.engine.notifier.outcome import UNKNOWN_TRIES, Result, WhoSends, outcome_of
from bot.engine.notifier.pace import CHANNEL_BURST, CHANNEL_GAP, Bucket
from bot.engine.notifier.send import render_reply

__all__ = ["CHANNEL_BURST", "CHANNEL_GAP", "UNKNOWN_TRIES", "Bucket", "Halted", "Notifier", "WhoSends",
           "Result", "Turns", "outcome_of", "render_reply"]
