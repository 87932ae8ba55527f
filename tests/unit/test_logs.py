"""bot/support/logs.py: the JSON formatter (one valid object a line, its fields, unicode, exceptions) and
`configure` as the command runs it (LOG_FORMAT, LOG_LEVEL, --log-level), in a child process whose logging is
its own."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.support.logs import FORMATS, JsonFormatter, Redact, about, formatter

ROOT = Path(__file__).resolve().parents[2]


def record(msg: str, *args: Any, level: int = logging.INFO, exc: bool = False,
           **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("the vendor said «nein»\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("bot.engine.poller", level, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_a_line_is_one_json_object_with_time_level_logger_and_message() -> None:
    rec = record("%s job %s answers again", "fusion-prod", "44046", **about("fusion-prod", "44046"))
    rec.created = 1_766_000_000.25
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    got = json.loads(line)
    assert got == {"time": "2025-12-17T19:33:20.250Z", "level": "INFO", "logger": "bot.engine.poller",
                   "message": "fusion-prod job 44046 answers again", "backend": "fusion-prod", "job": "44046"}
    assert datetime.fromisoformat(got["time"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_fields_about_a_watch_and_a_channel_and_only_those_given() -> None:
    got = json.loads(JsonFormatter().format(record("watch 7: retrying", level=logging.WARNING,
                                                   **about(watch=7, channel="C0001"))))
    assert got["watch"] == 7 and got["channel"] == "C0001" and got["level"] == "WARNING"
    assert "backend" not in got and "job" not in got
    assert about() == {} and about("b") == {"backend": "b"}


def test_unicode_stays_readable_and_a_newline_keeps_it_one_line() -> None:
    line = JsonFormatter().format(record("job %s: %s", "Überweisung ✓", "line one\nline two\ttab\x00nul"))
    assert len(line.splitlines()) == 1
    got = json.loads(line)
    assert got["message"] == "job Überweisung ✓: line one\nline two\ttab\x00nul"
    assert "Überweisung ✓" in line  # not \\u-escaped


def test_an_exception_is_its_formatted_traceback_in_exc() -> None:
    line = JsonFormatter().format(record("polling %s failed unexpectedly", "vault", level=logging.ERROR,
                                         exc=True, **about("vault")))
    assert len(line.splitlines()) == 1
    got = json.loads(line)
    assert got["message"] == "polling vault failed unexpectedly" and got["backend"] == "vault"
    assert got["exc"].startswith("Traceback (most recent call last):")
    assert got["exc"].endswith("ValueError: the vendor said «nein»\nsecond line")


def test_a_field_json_cannot_hold_is_its_text() -> None:
    got = json.loads(JsonFormatter().format(record("x", job=Path("a/b"))))
    assert got["job"] == "a/b"


def test_the_text_format_is_the_readable_one() -> None:
    line = formatter("text").format(record("%s job %s answers again", "fusion", "1"))
    assert line.endswith(" INFO bot.engine.poller: fusion job 1 answers again")
    assert FORMATS == ("text", "json")


CHILD = """\
import logging, sys
from bot.support import logs
logs.configure(sys.argv[1] or None, "INFO")
log = logging.getLogger("bot.engine.poller")
log.debug("debug line")
log.info("info line %s", "é", extra=logs.about("fusion", "44046"))
log.warning("warning line")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it broke")
"""


def run_child(flag: str = "", **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", CHILD, flag], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    return out.stderr.splitlines()


def test_log_format_json_logs_json_lines_at_info_by_default() -> None:
    lines = [json.loads(line) for line in run_child(LOG_FORMAT="json")]
    assert [(g["level"], g["message"]) for g in lines] == [
        ("INFO", "info line é"), ("WARNING", "warning line"), ("ERROR", "it broke")]
    assert lines[0]["backend"] == "fusion" and lines[0]["job"] == "44046"
    assert "ZeroDivisionError" in lines[2]["exc"]


def test_the_default_is_text_and_log_level_sets_the_level() -> None:
    lines = run_child(LOG_LEVEL="debug")
    assert "DEBUG bot.engine.poller: debug line" in lines[0]
    assert any(line.endswith("ERROR bot.engine.poller: it broke") for line in lines)
    assert "Traceback (most recent call last):" in lines


@pytest.mark.parametrize("log_format", FORMATS)
def test_the_flag_wins_over_log_level(log_format: str) -> None:
    lines = run_child("ERROR", LOG_LEVEL="DEBUG", LOG_FORMAT=log_format)
    assert "it broke" in lines[0] and not any("warning line" in line for line in lines)


def test_a_value_it_does_not_know_is_said_and_the_default_used() -> None:
    lines = run_child(LOG_FORMAT="jsn", LOG_LEVEL="loud")
    assert "WARNING bot: LOG_FORMAT='jsn' is not one of text, json; logging text" in lines[0]
    assert ("WARNING bot: LOG_LEVEL='loud' is not DEBUG, INFO, WARNING, ERROR or CRITICAL; logging at INFO"
            in lines[1])
    assert any(line.endswith("INFO bot.engine.poller: info line é") for line in lines)


# -- Redact: no response_url and no Slack token in a line --------------------------------------------------

HOOK = "https://hooks.slack.com/actions/T0001/1234/aBcD3fGh"
# the fake Slack's: recognised as a field, not by its host
LOOPBACK_HOOK = "http://127.0.0.1:5555/response/r42"


@pytest.mark.parametrize("line", [
    f"body: {{'response_url': '{LOOPBACK_HOOK}', 'token': 'xoxb-1-2-abc'}}",  # a dict's repr
    json.dumps({"payload": {"response_url": LOOPBACK_HOOK}}),  # JSON
    json.dumps({"raw": json.dumps({"response_url": LOOPBACK_HOOK})}),  # JSON in a JSON string
    "payload=%7B%22response_url%22%3A%20%22http%3A%2F%2F127.0.0.1%3A5555%2Fresponse%2Fr42%22%7D",  # a form
    f"posted to {HOOK} at once",  # Slack's own host, anywhere
    json.dumps({"u": HOOK}).replace("/", "\\/"),  # JSON-escaped slashes
    "{'token': 'r42', 'access_token': 'r42'}",  # Slack's verification token in a payload, an OAuth token
    "body: token=r42&command=%2Fjobstatus",  # a form
])
def test_redact_takes_out_every_form_of_a_response_url_and_tokens(line: str) -> None:
    rec = record("%s", line)
    assert Redact().filter(rec) is True
    out = rec.getMessage()
    assert "r42" not in out and "aBcD3fGh" not in out and "xoxb-" not in out and "[redacted]" in out


def test_redact_on_the_webhook_client_takes_out_any_url_and_keeps_other_lines_as_they_are() -> None:
    rec = logging.LogRecord("slack_sdk.webhook.async_client", logging.DEBUG, __file__, 1,
                            "Sending a request - url: %s, body: %s", (LOOPBACK_HOOK, "{}"), None)
    Redact().filter(rec)
    assert rec.getMessage() == "Sending a request - url: [redacted], body: {}"
    plain = record("polling %s every %d s (see https://docs.example/x)", "fusion", 30)
    Redact().filter(plain)
    assert plain.getMessage() == "polling fusion every 30 s (see https://docs.example/x)" and plain.args
    ours = record("Slack refuses the bot's token: token_revoked since %s", "12:00")
    Redact().filter(ours)
    assert ours.getMessage() == "Slack refuses the bot's token: token_revoked since 12:00"


def test_redact_cleans_a_traceback_too() -> None:
    try:
        raise RuntimeError(f"could not post to {HOOK} with xapp-1-A0-1-secret")
    except RuntimeError:
        rec = logging.LogRecord("slack_bolt.AsyncApp", logging.ERROR, __file__, 1, "failed", None,
                                sys.exc_info())
    Redact().filter(rec)
    for fmt in FORMATS:
        out = formatter(fmt).format(rec)
        assert "RuntimeError" in out and "aBcD3fGh" not in out and "xapp-" not in out
