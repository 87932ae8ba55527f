"""The /jobstatus grammar: every form users type, and the answers typos get."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.inbound.listeners.commands import Command, UsageError, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("   ", Command("help")),
        ("help", Command("help")),
        ("HELP", Command("help")),
        ("list", Command("list")),
        ("backends", Command("backends")),
        ("watch fusion-prod 44046", Command("watch", "fusion-prod", "44046")),
        ("fusion-prod 44046", Command("watch", "fusion-prod", "44046")),
        ("  status   vault-qa  1201 ", Command("status", "vault-qa", "1201")),
        ("unwatch epm 1881", Command("unwatch", "epm", "1881")),
        ("cancel vault-qa 1201", Command("cancel", "vault-qa", "1201")),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("watch fusion-prod", "Usage: `/jobstatus watch &lt;backend&gt; &lt;job-id&gt;`"),
        ("watch a b c", "Usage: `/jobstatus watch"),
        ("wacth fusion-prod 44046", "Did you mean `watch`?"),
        ("list everything", "takes nothing after it"),
        ("frobnicate", "I don't know `frobnicate`"),
        ("x" * 600, "too long"),
    ],
)
def test_typos_say_what_to_do(text: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(text)
    assert says in str(err.value)


def test_user_text_is_escaped_in_errors() -> None:
    with pytest.raises(UsageError) as err:
        parse("<!channel> a b")
    assert "<!channel>" not in str(err.value)
    assert "&lt;!channel&gt;" in str(err.value)


@given(st.text(max_size=700))
def test_any_text_parses_or_gives_a_usage_error(text: str) -> None:
    try:
        cmd = parse(text)
    except UsageError as exc:
        assert str(exc)
        return
    assert cmd.verb in {"watch", "status", "unwatch", "cancel", "list", "backends", "help"}
    if cmd.verb in {"watch", "status", "unwatch", "cancel"}:
        assert cmd.backend and cmd.job_id
