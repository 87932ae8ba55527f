"""Message rendering: escaping of backend text, Block Kit limits, failure replies, buttons."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from bot import messages
from bot.backends.base import Link
from bot.backends.states import Phase
from bot.jobs import JobView


def view(**kw: object) -> JobView:
    base: dict[str, object] = dict(backend="fusion-prod", job_id="44046", name="DataExport", phase=Phase.RUNNING,
                                   vendor_status="RUNNING", progress=50, message=None, log_paths=(), links=(),
                                   checked_at=1_700_000_000.0)
    base.update(kw)
    return JobView(**base)  # type: ignore[arg-type]


def all_text(blocks: list[dict]) -> str:
    return json.dumps(blocks)


def test_backend_text_cannot_become_markup() -> None:
    hostile = "<!channel> <https://evil.example|click> & <@U123>"
    text, blocks = messages.parent(view(name=hostile, message=hostile), watcher="U1", watch_id=7, active=True,
                                   ended_reason=None, can_cancel=False)
    dumped = all_text(blocks)
    assert "<!channel>" not in dumped and "<https://evil" not in dumped and "<@U123>" not in dumped
    assert "&lt;!channel&gt;" in dumped and "&amp;" in dumped


def test_failure_reply_carries_message_paths_mention_and_broadcast() -> None:
    p = messages.change(
        view(phase=Phase.FAILED, vendor_status="1 Error", message="ORA-01555 snapshot too old",
             log_paths=("outbox/logs/BESSAPP-DB_1881.log", "outbox\\BESSAPPJan-06.csv"),
             links=(Link("artifacts", "https://vault.example/api/v26.1/services/jobs/1/artifacts"),)),
        watcher="U42", old_phase=Phase.RUNNING, old_word="-1 In Progress").payload()
    body = all_text(p["blocks"])
    assert p["broadcast"] is True
    assert "<@U42>" in body
    assert "ORA-01555 snapshot too old" in body
    assert "outbox/logs/BESSAPP-DB_1881.log" in body and "BESSAPPJan-06.csv" in body
    assert "artifacts" in body
    assert "ORA-01555" in p["text"]


def test_success_reply_is_not_broadcast() -> None:
    p = messages.change(view(phase=Phase.SUCCEEDED, vendor_status="SUCCEEDED"), watcher="U1",
                        old_phase=Phase.RUNNING, old_word="RUNNING").payload()
    assert p["broadcast"] is False
    assert "<@U1>" not in all_text(p["blocks"])


def test_buttons_follow_state_and_capability() -> None:
    def action_ids(blocks: list[dict]) -> list[str]:
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    _, running = messages.parent(view(), watcher="U1", watch_id=3, active=True, ended_reason=None, can_cancel=True)
    assert action_ids(running) == ["jobstatus_cancel", "jobstatus_refresh", "jobstatus_stop"]
    cancel = next(e for b in running if b["type"] == "actions" for e in b["elements"])
    assert cancel["confirm"]["confirm"]["text"] == "Cancel job" and cancel["value"] == "3"
    _, no_cancel = messages.parent(view(), watcher="U1", watch_id=3, active=True, ended_reason=None, can_cancel=False)
    assert action_ids(no_cancel) == ["jobstatus_refresh", "jobstatus_stop"]
    _, ended = messages.parent(view(phase=Phase.SUCCEEDED), watcher="U1", watch_id=3, active=False,
                               ended_reason="finished", can_cancel=True)
    assert action_ids(ended) == ["jobstatus_rewatch"]


def test_vendor_word_stays_visible() -> None:
    assert messages.state_words(Phase.FAILED, "ERRORS_ENCOUNTERED") == "failed (ERRORS_ENCOUNTERED)"
    assert messages.state_words(Phase.RUNNING, "RUNNING") == "running"


@given(st.text(max_size=20000))
def test_any_backend_text_fits_block_kit_and_stays_escaped(text: str) -> None:
    _, blocks = messages.parent(view(name=text[:300], message=text), watcher="U1", watch_id=1, active=True,
                                ended_reason=None, can_cancel=True)
    p = messages.change(view(phase=Phase.FAILED, message=text, log_paths=(text[:500],)),
                        watcher="U1", old_phase=Phase.RUNNING, old_word="RUNNING").payload()
    for b in blocks + p["blocks"]:
        if b["type"] == "section" and "text" in b:
            assert len(b["text"]["text"]) <= messages.SECTION_LIMIT
        if b["type"] == "context":
            assert all(len(e["text"]) <= messages.CONTEXT_LIMIT for e in b["elements"])
        if b["type"] == "section" and "fields" in b:
            assert all(len(f["text"]) <= messages.FIELD_LIMIT for f in b["fields"])
    # the only markup left is ours: the date token and the watcher mention
    texts = [e["text"] for b in blocks + p["blocks"] for e in _text_elements(b)]
    ours = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time_secs\}\|[^<>]*>|<@U1>|^> ", re.M)
    assert all("<" not in ours.sub("", t) and ">" not in ours.sub("", t).replace("&gt;", "") for t in texts)


def _text_elements(block: dict) -> list[dict]:
    out = []
    if "text" in block and isinstance(block["text"], dict):
        out.append(block["text"])
    out += block.get("fields", [])
    out += [e for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return out


def test_long_text_is_cut_visibly() -> None:
    out = messages.cut("x" * 5000, 3000)
    assert len(out) == 3000 and out.endswith("(truncated)")
    assert messages.cut("a &amp; b", 8).endswith("(truncated)")
    assert "&am" not in messages.cut("y" * 2980 + "&amp;" * 10, 3000).replace("&amp;", "")
