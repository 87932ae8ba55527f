"""End to end, what a person reads: answers that say what is true, in the order they are meant, replies only
when a change means something, and every thing said once. Signed requests into the real bot; assertions on
what reached the fake Slack."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest

from bot.offline.vendors.core import Step
from tests.conftest import Harness


def texts(blocks: list[dict[str, Any]] | None) -> str:
    """A message's blocks as a person reads them (Slack's &-escapes undone)."""
    return html.unescape(json.dumps(blocks or [], ensure_ascii=False))


def field(msg: Any, name: str) -> str:
    """The text of one field of a parent message ("Status", "Progress")."""
    fields = [f["text"] for b in msg.blocks or [] if b["type"] == "section" for f in b.get("fields", [])]
    return next(f for f in fields if f.startswith(f"*{name}*")).split("\n", 1)[1]


async def answer(h: Harness, text: str, user: str = "U0001") -> str:
    return str((await h.watch(text, user=user)).responses()[-1].text)


# -- cancel: what is true, the rule only when it is the reason ---------------------------------------------


async def test_cancel_of_a_job_that_ended_says_it_ended_even_to_its_watcher(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9100, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9100")
    h.sim.fusion.set_state(9100, "ERROR", message="ESS-07034")
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies()), what="the failure reply")
    said = await answer(h, "cancel fusion-demo 9100")
    assert said == "fusion-demo job `9100` has already ended (failed (ERROR)): there is nothing to cancel."
    assert h.sim.fusion.count("POST", "/cancel") == 0


async def test_cancel_of_a_job_that_does_not_exist_says_so(harness: Harness) -> None:
    said = await answer(harness, "cancel fusion-demo 424242")
    assert said == ("fusion-demo has no job `424242`. Check the id (and that it is an Oracle Fusion job id).")


async def test_cancel_of_a_running_job_nobody_watches_says_it_has_no_owner_yet(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9101, steps=[Step(0, "RUNNING")])
    said = await answer(h, "cancel fusion-demo 9101")
    assert said.startswith("Nobody watches this job yet, so it has no owner: under the `cancel: owner` rule")
    assert h.sim.fusion.count("POST", "/cancel") == 0


# -- the order of ephemeral answers: the last thing the person sees is the answer ----------------------------


@pytest.mark.parametrize(("command", "says"), [
    ("status fusion-demo 9102", "fusion-demo job 9102: running"),
    ("unwatch fusion-demo 9102", "This channel does not watch fusion-demo job `9102`."),
    ("cancel fusion-demo 9102", "Nobody watches this job yet, so it has no owner"),
])
async def test_the_answer_is_the_last_ephemeral_after_the_checking_line(
        harness: Harness, command: str, says: str) -> None:
    h = harness
    h.sim.fusion.add_job(9102, steps=[Step(0, "RUNNING")])
    result = await h.watch(command)
    shown = [e.text for e in h.slack.ephemerals_for("U0001", "C0001")]
    assert shown[0] == "Checking fusion-demo job `9102`…" and len(shown) == 2
    assert shown[-1].startswith(says)
    # new messages, in this order
    assert [p.outcome for p in result.responses()] == ["ephemeral", "ephemeral"]


# -- thread replies: a new phase, or a vendor word that means something --------------------------------------


async def test_a_vendor_word_that_means_nothing_new_updates_the_parent_and_is_not_a_reply(
    harness: Harness,
) -> None:
    h = harness
    h.sim.fusion.add_job(9103, steps=[Step(0, "WAIT")])
    await h.watch("watch fusion-demo 9103")
    h.sim.fusion.set_state(9103, "BLOCKED")  # the same phase, but a word that says something: told
    await h.slack.wait_for(lambda: any("BLOCKED" in r.text for r in h.replies()), what="the BLOCKED reply")
    h.sim.fusion.set_state(9103, "RUNNING", progress=50)
    await h.slack.wait_for(lambda: any("running" in r.text for r in h.replies()), what="the running reply")
    # Fusion's other word for running: the parent only
    h.sim.fusion.set_state(9103, "IN_PROGRESS", progress=0)
    await h.slack.wait_for(lambda: field(h.parents()[0], "Status") == "running (IN_PROGRESS)",
                           what="the parent showing IN_PROGRESS")
    h.sim.fusion.set_state(9103, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()), what="the success reply")
    said = [r.text for r in h.replies()]
    assert len(said) == 3 and "BLOCKED" in said[0] and "running" in said[1] and "succeeded" in said[2]
    assert not [t for t in said if "IN_PROGRESS" in t]


# -- each thing said once, and what is shown agrees with itself ----------------------------------------------


async def test_a_failed_fusion_job_keeps_its_last_progress_not_a_full_bar(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9104, steps=[Step(0, "RUNNING", {"progress": 40})])
    await h.watch("watch fusion-demo 9104")
    assert field(h.parents()[0], "Progress").endswith(" 40%")
    h.sim.fusion.set_state(9104, "FAILED", message="ORA-01555")  # Fusion's answer says 100 once it ended
    await h.slack.wait_for(
        lambda: field(h.parents()[0], "Status") == "failed", what="the parent showing failed"
    )
    assert field(h.parents()[0], "Progress").endswith(" 40%")


async def test_an_epm_log_excerpt_counts_its_errors_and_its_lines(harness: Harness) -> None:
    h = harness
    h.sim.epm_di.add_job(1895, steps=[Step(0, -1)], log_file="outbox/logs/GL_1895.log",
                         log_text="INFO a\nERROR one\nINFO b\nINFO c\nINFO d\nINFO e\nERROR two\nINFO f\n")
    await h.watch("watch epm-demo 1895")
    h.sim.epm_di.set_state(1895, "1", details="Load failed")
    await h.slack.wait_for(lambda: any("Errors reported" in texts(r.blocks) for r in h.replies()),
                           what="the details reply")
    details = next(texts(r.blocks) for r in h.replies() if "Errors reported" in texts(r.blocks))
    # two errors with their context: "INFO a", "ERROR one", "INFO b", "INFO c", "…", "INFO e", "ERROR two",
    # "INFO f"
    assert "*Errors reported* (2 errors, 8 lines shown)" in details
    thread = [texts(r.blocks) for r in h.replies()]
    # the failure reply's; the details say it no more
    assert sum("outbox/logs/GL_1895.log" in t for t in thread) == 1


# -- wording -------------------------------------------------------------------------------------------------


async def test_a_backend_named_in_capitals_is_the_backend(harness: Harness) -> None:
    h = harness
    h.sim.epm_di.add_job(1896, steps=[Step(0, -1)])
    assert (await answer(h, "watch EPM-DEMO 1896")).startswith("Watching epm-demo job `1896`")


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (
            "watch planning-demo abc",
            "'abc' is not an EPM Planning job id: it is the Planning job id, digits only, e.g. 224.",
        ),
        (
            "watch epm-demo 12345678901234567890",
            "'12345678901234567890' is too long for an EPM Data Integration job id: 20 digits, at most 18.",
        ),
        (
            "watch fusion-demo 12ab",
            "'12ab' is not an Oracle Fusion job id: it is the job request id the Job Scheduler "
            "API returned, digits only, e.g. 44046.",
        ),
        ("watch epm-dmeo 1881", "There is no backend called `epm-dmeo`. Did you mean `epm-demo`?"),
    ],
)
async def test_a_mistyped_command_is_answered_in_words_once(
    harness: Harness, command: str, says: str
) -> None:
    result = await harness.user.command(command)
    assert result.ack_text.startswith(says) and result.ack_text.count("is not") <= 1
    assert harness.parents() == []


async def test_an_unknown_job_names_the_backends_kind_in_words(harness: Harness) -> None:
    said = await answer(harness, "watch epm-demo 424242")
    assert (
        said == "epm-demo has no job `424242`. Check the id (and that it is an EPM Data Integration job id)."
    )
