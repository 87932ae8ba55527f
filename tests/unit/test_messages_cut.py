"""`cut` in bot/rendering/messages.py at its edges: text that fits is left alone, text one over is cut to
exactly the limit with a visible mark, and an &escape; (esc's &amp; &lt; &gt;) is never split, wherever the
limit falls."""

from __future__ import annotations

import re

import pytest

from bot.rendering import messages
from bot.rendering.messages import TRUNCATED, cut, esc

ESCAPES = ("&amp;", "&lt;", "&gt;")


def _whole_escapes_only(text: str) -> bool:
    return "&" not in re.sub(r"&(amp|lt|gt);", "", text)


@pytest.mark.parametrize("limit", [len(TRUNCATED), len(TRUNCATED) + 1, 40, 300, messages.SECTION_LIMIT])
def test_text_that_fits_is_kept_and_one_more_is_cut_to_exactly_the_limit(limit: int) -> None:
    assert cut("x" * limit, limit) == "x" * limit
    out = cut("x" * (limit + 1), limit)
    assert out == "x" * (limit - len(TRUNCATED)) + TRUNCATED and len(out) == limit
    assert cut("", limit) == ""


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("shift", range(0, 7))
def test_an_escape_at_the_cut_is_dropped_whole_never_split(escape: str, shift: int) -> None:
    limit = 60
    room = limit - len(TRUNCATED)
    text = "y" * (room - shift) + escape + "z" * 50  # the escape starts `shift` characters before the cut
    out = cut(text, limit)
    assert out.endswith(TRUNCATED) and len(out) <= limit and _whole_escapes_only(out)
    kept = out.removesuffix(TRUNCATED)
    if shift >= len(escape):  # it fits whole before the cut: kept, and what fits after it too
        assert kept == text[:room]
    else:  # it would be split: it goes, and nothing after it
        assert kept == "y" * (room - shift)


def test_only_the_last_ampersand_before_the_cut_counts_and_an_ended_escape_stays() -> None:
    limit = 40
    room = limit - len(TRUNCATED)
    text = "&lt;" + "a" * (room - 4 - 5) + "&amp;" + "b" * 30  # both escapes end before the cut
    assert cut(text, limit) == text[:room] + TRUNCATED
    text = "&lt;" + "a" * (room - 4 - 2) + "&amp;" + "b" * 30  # the second is split: only it goes
    assert cut(text, limit) == "&lt;" + "a" * (room - 6) + TRUNCATED


@pytest.mark.parametrize("limit", [0, 1, 5, len(TRUNCATED) - 1])
def test_a_limit_shorter_than_the_mark_still_bounds_the_text(limit: int) -> None:
    """A negative slice (limit - 13) once kept most of the text: cut("x" * 100, 5) was 105 characters long."""
    assert cut("x" * 100, limit) == ("x" * (limit - 1) + "…" if limit else "")
    assert cut("a &amp; b", 8) == "a &amp;…"
    assert cut("ab&amp;cd", 6) == "ab…"  # not split either


def test_any_escaped_text_cut_anywhere_is_bounded_and_never_splits_an_escape() -> None:
    raw = "a<b>&c " * 40
    text = esc(raw)
    for limit in range(len(TRUNCATED), len(text) + 2):
        out = cut(text, limit)
        assert len(out) <= limit and _whole_escapes_only(out), limit
        assert out == text or (out.endswith(TRUNCATED) and text.startswith(out.removesuffix(TRUNCATED)))
