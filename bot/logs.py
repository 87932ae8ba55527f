"""How the bot logs: readable text (the default) or one JSON object a line (`LOG_FORMAT=json`), at `LOG_LEVEL`.

A line about one backend, job, watch or channel carries them as fields (`extra=about(...)` at the call site),
so a log store can select them without parsing the message; the text format shows only the message, which
names them too. What a line holds is the same in both formats: no secret reaches either (the secret tests run
over both).
"""

from __future__ import annotations

import json
import logging
import os
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
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii off: a vendor's job name stays readable; json escapes every control character, so a
        # message with a newline is still one line
        return json.dumps(line, ensure_ascii=False, default=str)


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
    logging.basicConfig(level=level, handlers=[handler])
    for problem in problems:
        logging.getLogger("bot").warning("%s", problem)
