"""How the bot logs: readable text (the default) or one JSON object a line (`LOG_FORMAT=json`), at
`LOG_LEVEL`.

A line about one backend, job, watch or channel carries them as fields (`extra=about(...)` at the call site),
so a log store can select them without parsing the message; the text format shows only the message, which
names them too. What a line holds is the same in both formats: no secret reaches either (the secret tests run
over both).

At DEBUG, slack_sdk and Bolt log what they send and receive: slack_sdk's web client the form and JSON of each
call and each answer (slack_sdk/web/async_internal_utils.py, "Sending a request" / "Received the following
response"), its webhook client, which Bolt's `respond()` uses, the `response_url` itself ("Sending a request -
url: …", slack_sdk/webhook/async_client.py), Bolt the event it skipped and the body it answered. A
`response_url` lets whoever holds it post into the channel for 30 minutes, and a token is a token: `Redact`
takes both out of every line before it is written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("backend", "job", "watch", "channel")  # what a line may be about, as `about()` names them


def about(backend: str | None = None, job: str | None = None, *, watch: int | None = None,
          channel: str | None = None) -> dict[str, Any]:
    """The `extra=` of a log call about one backend / job / watch / channel (only those given)."""
    given = {"backend": backend, "job": job, "watch": watch, "channel": channel}
    return {k: v for k, v in given.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, what the line is about
    (`about()`'s fields), and `exc` (the formatted traceback) when it carries an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, int | float | str | bool) else str(value)
        if record.exc_text:  # already formatted, and redacted (Redact)
            line["exc"] = record.exc_text
        elif record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii off: a vendor's job name stays readable; json escapes every control character, so a
        # message with a newline is still one line
        return json.dumps(line, ensure_ascii=False, default=str)


REDACTED = "[redacted]"
# A response_url as a field: a dict's repr ('response_url': '…'), JSON ("response_url":"…", also with \"
# inside a string), a form (response_url=…), or URL-encoded JSON in a form (response_url%22%3A%22…%22)
_RESPONSE_URL_FIELD = re.compile(
    r"""(response_url(?:['"]|\\"|%22)?\s*(?::|=|%3A)(?:\s|%20)*(?:['"]|\\"|%22)?)"""
    r"""(?:[^'"\s,}&%\\]|\\(?!")|%(?!22))+""", re.I)
# Slack's own response_url and incoming-webhook hosts, however the URL is written (plain, JSON-escaped,
# encoded)
_HOOKS = re.compile(r"https?(?::|%3A)(?://|\\/\\/|%2F%2F)hooks\.slack(?:-gov)?\.com[^\s'\"<>,}]*", re.I)
# A token as a quoted field (a dict's repr, JSON: Slack's legacy verification `token` in every payload it
# sends, an `access_token`) or as a form field (`token=`)
_TOKEN_FIELD = re.compile(r"""((?:['"]|\\")\w*token(?:['"]|\\")\s*:\s*(?:['"]|\\"))(?:[^'"\\]|\\(?!"))+"""
                          r"""|((?:^|[?&\s])token=)[^&\s]+""")
# Slack tokens: bot/user/app/config tokens (api.slack.com/authentication/token-types) and app-level `xapp-`
_TOKEN = re.compile(r"(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")  # no \b: in URL-encoded text %22 precedes it
_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s,'\"]+", re.I)
# slack_sdk's webhook client: every URL it names is the response_url it posts to
WEBHOOK_LOGGERS = ("slack_sdk.webhook",)


def redact(text: str, *, urls: bool = False) -> str:
    """`text` without a response_url or a token; with `urls`, without any URL at all."""
    text = _RESPONSE_URL_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    text = _HOOKS.sub(REDACTED, text)
    text = _TOKEN_FIELD.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
    text = _TOKEN.sub(REDACTED, text)
    return _ANY_URL.sub(REDACTED, text) if urls else text


class Redact(logging.Filter):
    """Takes response_urls and Slack tokens out of a record's message (and its traceback) before any handler
    writes it. On the handler `configure` installs: a filter on a logger is consulted only for records logged
    on that very logger, not for those its descendants propagate (docs.python.org/3/library/logging.html,
    "Filter Objects"), and slack_sdk and Bolt log on many child loggers (slack_sdk.web.async_base_client,
    slack_sdk.webhook.async_client, slack_bolt.AsyncApp, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        urls = record.name.startswith(WEBHOOK_LOGGERS)
        message = record.getMessage()
        clean = redact(message, urls=urls)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, urls=urls)
        return True


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of `LOG_FORMAT` (`text` or `json`)."""
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)


def configure(flag_level: str | None, default_level: str, env: Mapping[str, str] | None = None) -> None:
    """Log to stderr in `LOG_FORMAT` at `--log-level`, else `LOG_LEVEL`, else `default_level`. A value it
    does not know is said in the log (at WARNING) and the default used instead."""
    env = os.environ if env is None else env
    problems = []
    log_format = (env.get("LOG_FORMAT") or "text").strip().lower()
    if log_format not in FORMATS:
        problems.append(f"LOG_FORMAT={log_format!r} is not one of {', '.join(FORMATS)}; logging text")
        log_format = "text"
    asked = flag_level or env.get("LOG_LEVEL") or default_level
    level = logging.getLevelName(asked.strip().upper())
    if not isinstance(level, int):
        where = "--log-level" if flag_level else "LOG_LEVEL"
        problems.append(f"{where}={asked!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL; logging at "
                        f"{default_level}")
        level = logging.getLevelName(default_level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(Redact())
    logging.basicConfig(level=level, handlers=[handler])
    for problem in problems:
        logging.getLogger("bot").warning("%s", problem)
