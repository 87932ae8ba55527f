"""Message rendering: escaping of backend text, Block Kit limits, failure replies, buttons."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.jobs import JobView
from bot.domain.states import Phase
from bot.domain.status import FailureDetails, JobStatus, Link
from bot.rendering import messages


def view(**kw: object) -> JobView:
    base: dict[str, object] = dict(backend="fusion-prod", job_id="44046", name="DataExport",
                                   phase=Phase.RUNNING,
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

    _, running = messages.parent(view(), watcher="U1", watch_id=3, active=True, ended_reason=None,
                                 can_cancel=True)
    assert action_ids(running) == ["jobstatus_cancel", "jobstatus_refresh", "jobstatus_stop"]
    cancel = next(e for b in running if b["type"] == "actions" for e in b["elements"])
    assert cancel["confirm"]["confirm"]["text"] == "Cancel job" and cancel["value"] == "3"
    _, no_cancel = messages.parent(view(), watcher="U1", watch_id=3, active=True, ended_reason=None,
                                   can_cancel=False)
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
    assert messages.cut("a &amp; b", 8) == "a &amp;…"  # shorter than the mark: its short form, still bounded
    assert "&am" not in messages.cut("y" * 2980 + "&amp;" * 10, 3000).replace("&amp;", "")


def test_the_details_reply_says_nothing_the_change_reply_said_and_counts_what_it_shows() -> None:
    """Planning and Vault give the job's links again with the details; EPM's log excerpt shows context lines
    beside its error lines. The change reply before it carried the links and the message already."""
    links = (Link("Job details",
                  "https://epm.example/HyperionPlanning/rest/v3/applications/Vision/jobs/224/details"),)
    job = view(phase=Phase.FAILED, vendor_status="1 Error", message="Load failed", links=links)
    change = messages.change(job, watcher="U1", old_phase=Phase.RUNNING, old_word="-1 In Progress")
    assert "*Logs and outputs*" in all_text(change.blocks)
    excerpt = ("INFO reading", "ERROR no periods", "INFO skipped", "ERROR load failed")
    d = FailureDetails(lines=("Load failed", *excerpt), total_errors=2, links=links,
                       hint="See the Jobs console.")
    reply = messages.details(job, d)
    assert reply is not None
    body = all_text(reply.blocks)
    assert "Logs and outputs" not in body and "jobs/224/details" not in body  # said once, in the change reply
    assert "*Errors reported* (2 errors, 4 lines shown)" in body and "Load failed" not in body
    assert "ERROR load failed" in body


def test_the_errors_heading_counts_what_is_shown() -> None:
    assert messages.errors_head(3, 3) == "*Errors reported* (3)"
    assert messages.errors_head(30, 25) == "*Errors reported* (30 errors, 25 lines shown)"
    assert messages.errors_head(1, 4) == "*Errors reported* (1 error, 4 lines shown)"
    assert messages.errors_head(0, 8) == "*No errors reported*; 8 lines shown"
    assert messages.errors_head(None, 2) == "*Errors reported*"


def test_each_output_file_is_one_row_with_its_link() -> None:
    d = FailureDetails(files=(("Extract_44046.zip", 7_340_032),),
                       links=(Link("Extract_44046.zip", "https://fa.example/enclosure/1"),))
    reply = messages.details(view(phase=Phase.SUCCEEDED, vendor_status="SUCCEEDED"), d)
    assert reply is not None
    [files] = [b["text"]["text"] for b in reply.blocks if b["type"] == "section"]
    assert files == "*Output files*\n• `Extract_44046.zip` (7.0 MB): `https://fa.example/enclosure/1`"


def test_a_failed_job_at_100_percent_shows_no_full_bar() -> None:
    st = JobStatus("44047", Phase.FAILED, "FAILED", progress=100)
    blocks = messages.status_ephemeral(JobView.of_status("fusion-prod", st, 1_700_000_000.0))
    assert blocks[1]["text"]["text"] == "*Status:* failed   *Progress:* –"


def test_a_log_the_change_reply_listed_is_not_listed_again_with_the_details() -> None:
    job = view(phase=Phase.FAILED, vendor_status="1 Error", log_paths=("outbox/logs/GL_1881.log",))
    d = FailureDetails(lines=("ERROR one",), total_errors=1, files=(("outbox/logs/GL_1881.log", 2048),))
    reply = messages.details(job, d)
    assert reply is not None and "GL_1881.log" not in all_text(reply.blocks)


# -- run history: the usual line, "longer than usual", "while I was away" -----------------------------------


def test_a_running_parent_shows_the_usual_duration_and_the_expected_end() -> None:
    job = view(started_at=1_700_000_000.0, usual_s=14 * 60.0, usual_runs=10)
    _, blocks = messages.parent(job, watcher="U1", watch_id=1, active=True, ended_reason=None,
                                can_cancel=False)
    dumped = all_text(blocks)
    assert "Usually ~14 min (last 10 runs)" in dumped
    assert (f"expected end <!date^{1_700_000_000 + 840}^{{date_short_pretty}} {{time}}|2023-11-14 22:27 UTC>"
            in dumped)
    for quiet in (view(), view(phase=Phase.SUCCEEDED, usual_s=840.0, usual_runs=10)):
        _, blocks = messages.parent(quiet, watcher="U1", watch_id=1, active=True, ended_reason=None,
                                    can_cancel=False)
        assert "Usually" not in all_text(blocks)  # no history, or the run has ended
    _, blocks = messages.parent(view(usual_s=840.0, usual_runs=1), watcher="U1", watch_id=1, active=True,
                                ended_reason=None, can_cancel=False)
    assert "Usually ~14 min (last 1 run)" in all_text(blocks) and "expected end" not in all_text(blocks)


def test_the_late_note_gives_the_figures_and_mentions_the_watcher() -> None:
    reply = messages.late(view(usual_s=14 * 60.0, usual_runs=12), watcher="U7", seconds=25 * 60,
                          late_after=18 * 60)
    assert reply.text.startswith(":snail: <@U7>, this run is taking longer than usual: running for 25 min")
    assert "9 in 10 of its last 12 runs took at most 18 min; usually ~14 min" in reply.text


def test_while_i_was_away_is_one_reply_with_the_path_and_the_failure_details() -> None:
    job = view(phase=Phase.FAILED, vendor_status="FAILED", message="ORA-1 <!here>",
               log_paths=("/logs/a.log",))
    reply = messages.caught_up(job, watcher="U3", old_phase=Phase.QUEUED, old_word="WAIT",
                               steps=((Phase.RUNNING, 1_700_000_000.0), (Phase.FAILED, 1_700_000_600.0)))
    head = reply.blocks[0]["text"]["text"]
    assert head.startswith(":hourglass: *While I was away:* queued (WAIT) → running at <!date^1700000000^")
    assert "→ failed at <!date^1700000600^" in head
    dumped = all_text(reply.blocks)
    assert "<@U3>" in dumped and "ORA-1 &lt;!here&gt;" in dumped and "/logs/a.log" in dumped
    assert reply.broadcast and "<!here>" not in dumped and "<!here>" not in reply.text
    assert reply.text == "While I was away: fusion-prod job 44046: queued → failed: ORA-1 &lt;!here&gt;"


# -- vendor text reaches Slack only where it cannot become a mention or a link ------------------------------

VENDOR = "@here <!channel> #general https://evil.example & <@U123>"  # what a hostile or careless vendor says


def _mrkdwn_objects(node: object) -> list[dict]:
    """Every mrkdwn text object anywhere in `node` (blocks, fields, elements, a confirm dialog)."""
    if isinstance(node, dict):
        found = [node] if node.get("type") == "mrkdwn" else []
        return found + [o for v in node.values() for o in _mrkdwn_objects(v)]
    if isinstance(node, list):
        return [o for v in node for o in _mrkdwn_objects(v)]
    return []


def _every_renderer() -> dict[str, tuple[str | None, list[dict]]]:
    job = view(name=VENDOR, vendor_status=VENDOR, message=VENDOR, phase=Phase.FAILED, log_paths=(VENDOR,),
               links=(Link(VENDOR, VENDOR),), error_text=VENDOR, usual_s=60.0, usual_runs=3)
    running = view(name=VENDOR, vendor_status=VENDOR, message=VENDOR, error_text=VENDOR, progress=40)
    details = messages.details(job, FailureDetails(lines=(VENDOR, "ERROR " + VENDOR), total_errors=9,
                                                   files=((VENDOR, 10), ("b " + VENDOR, None)),
                                                   links=(Link("o " + VENDOR, VENDOR),), hint=VENDOR))
    assert details is not None
    replies = {
        "change": messages.change(job, watcher="U1", old_phase=Phase.RUNNING, old_word=VENDOR),
        "change (running)": messages.change(running, watcher="U1", old_phase=Phase.QUEUED, old_word=VENDOR),
        "details": details,
        "outage": messages.outage(job, 1_700_000_000.0, VENDOR, "auth"),
        "recovered": messages.recovered(job),
        "timed_out": messages.timed_out(job, 24),
        "upload_refused": messages.upload_refused(VENDOR, VENDOR, VENDOR),
        "late": messages.late(job, watcher="U1", seconds=600, late_after=300),
        "caught_up": messages.caught_up(job, watcher="U1", old_phase=Phase.RUNNING, old_word=VENDOR,
                                        steps=[(Phase.FAILED, 1_700_000_000.0)]),
        "digest": messages.digest("2026-12-07", [(job, "https://slack.com/archives/C1/p1"), (running, None)]),
        "note": messages.note(messages.esc(VENDOR)),
    }
    out: dict[str, tuple[str | None, list[dict]]] = {k: (r.text, r.blocks) for k, r in replies.items()}
    for active in (True, False):
        text, blocks = messages.parent(running, watcher="U1", watch_id=7, active=active,
                                       ended_reason=None if active else VENDOR, can_cancel=True)
        out[f"parent (active={active})"] = (text, blocks)
    out["status_ephemeral"] = (None, messages.status_ephemeral(job))
    return out


def test_every_renderer_sends_vendor_words_in_verbatim_mrkdwn_and_escaped() -> None:
    for name, (text, blocks) in _every_renderer().items():
        objects = _mrkdwn_objects(blocks)
        assert objects, name
        for o in objects:
            # verbatim: Slack renders our markup and manual mentions but links and mentions nothing else
            # (docs.slack.dev/reference/block-kit/composition-objects/text-object)
            assert o.get("verbatim") is True, (name, o)
            assert ("<!channel>" not in o["text"] and "<https://evil" not in o["text"]
                    and "<@U123>" not in o["text"])
        assert text is None or ("<!channel>" not in text and "<@U123>" not in text), name
    said = " ".join(o["text"] for _, blocks in _every_renderer().values() for o in _mrkdwn_objects(blocks))
    assert ("@here" in said and "&lt;!channel&gt;" in said and "#general" in said
            and "https://evil.example" in said)
