"""GET /metrics of the real bot, scraped and parsed as Prometheus does, against what the fake Slack and the
vendor simulators saw: Slack calls by method and outcome, vendor requests, polls, the outbox, an outage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.offline.vendors.core import Step
from tests.conftest import Harness

STATUS = "/api/saas-batch/jobscheduler/v1/jobRequests/{}"  # the Fusion simulator's status path
LABELS = {"backend", "method", "outcome", "loop", "le"}


@pytest.fixture(autouse=True)
def quick_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)  # pacing has its own tests


class Scrape:
    """One scrape of /metrics, parsed with prometheus_client's own parser."""

    def __init__(self, text: str) -> None:
        self.families = list(text_string_to_metric_families(text))
        self.samples = [s for f in self.families for s in f.samples]

    def get(self, name: str, **labels: str) -> float | None:
        """A sample's value; None when there is no such series (no one has reported it yet)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, (name, labels)
        return found[0] if found else None

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` carrying `labels` (and any other labels)."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())


async def scrape(h: Harness) -> Scrape:
    url = h.runtime.events_url.replace("/slack/events", "/metrics")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return Scrape(await resp.text())


async def scraped_until(h: Harness, ok: Callable[[Scrape], Any], what: str, timeout: float = 15) -> Scrape:  # noqa: ASYNC109
    last: list[Scrape] = []

    async def check() -> bool:
        last[:] = [await scrape(h)]
        return bool(ok(last[0]))

    await h.slack.wait_for(check, timeout=timeout, poll=0.05, what=what)
    return last[0]


async def test_the_figures_match_what_slack_and_the_vendors_saw(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44046, name="Extract", steps=[Step(0, "RUNNING")], output_files=[("out.zip", 10)])
    await h.watch("watch fusion-demo 44046")
    await scraped_until(h, lambda m: m.get("jobstatus_watches_active", backend="fusion-demo") == 1
                        and m.get("jobstatus_jobs_tracked", backend="fusion-demo") == 1, "the watch counted")

    h.slack.fail_next("chat.postMessage", "ratelimited")  # the change's reply waits Retry-After once
    h.sim.fusion.set_state(44046, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()), what="the reply")
    # the job has ended: once its details are in and nothing is owed, the bot asks and sends nothing more
    m = await scraped_until(h, lambda m: m.get("jobstatus_outbox_messages") == 0 and m.get(
        "jobstatus_vendor_request_duration_seconds_count", backend="fusion-demo") == h.sim.fusion.count(),
        "the outbox empty and every vendor request timed")

    def calls(method: str) -> int:
        return len([c for c in h.slack.calls_of(method) if c.ok])

    assert m.get("jobstatus_slack_calls_total", method="chat.postMessage", outcome="ok") == calls(
        "chat.postMessage"
    )
    assert calls("chat.postMessage") >= 3  # the parent, the change, the output files
    assert (
        m.get("jobstatus_slack_calls_total", method="chat.update", outcome="ok") == calls("chat.update") >= 1
    )
    limited = [c for c in h.slack.failed_calls if c.method == "chat.postMessage"]
    assert (
        m.get("jobstatus_slack_calls_total", method="chat.postMessage", outcome="retry") == len(limited) == 1
    )
    assert m.get("jobstatus_slack_rate_limited_total") == 1
    assert m.get("jobstatus_slack_rate_limit_wait_seconds_total") == h.slack.retry_after

    assert (
        m.get("jobstatus_vendor_request_duration_seconds_count", backend="fusion-demo")
        == h.sim.fusion.count()
    )
    for name in ("vault-demo", "epm-demo", "planning-demo", "immuta-demo"):  # asked nothing: counted nothing
        assert m.get("jobstatus_vendor_request_duration_seconds_count", backend=name) == 0
    status_calls = h.sim.fusion.count("GET", STATUS.format(44046))
    polls = m.total("jobstatus_polls_total", backend="fusion-demo")
    assert polls == status_calls - 1  # every status call but the one the watch command made
    assert (m.get("jobstatus_polls_total", backend="fusion-demo", outcome="changed") or 0) >= 1
    assert m.get("jobstatus_backend_up", backend="fusion-demo") == 1

    # the poll that saw the change owed the reply; Slack made it wait Retry-After before taking it
    assert m.get("jobstatus_change_to_reply_seconds_count", backend="fusion-demo") == 1
    assert (m.get("jobstatus_change_to_reply_seconds_sum", backend="fusion-demo") or 0) >= h.slack.retry_after
    assert (m.get("jobstatus_loop_lag_seconds_count", loop="poller") or 0) >= 1
    assert (m.get("jobstatus_loop_lag_seconds_count", loop="notifier") or 0) >= 1
    assert m.get("jobstatus_outbox_oldest_age_seconds") == 0
    assert m.get("jobstatus_jobs_tracked", backend="fusion-demo") == 0

    m = await scraped_until(h, lambda m: m.get("jobstatus_watches_active", backend="fusion-demo") == 0,
                            "the ended watch counted")
    for sample in m.samples:
        assert set(sample.labels) <= LABELS, sample
        assert sample.labels.get("backend", "fusion-demo") in h.settings.backends, sample
    assert {f.name for f in m.families} >= {
        "jobstatus_watches_active", "jobstatus_jobs_tracked", "jobstatus_polls", "jobstatus_backend_up",
        "jobstatus_vendor_request_duration_seconds", "jobstatus_slack_calls", "jobstatus_slack_rate_limited",
        "jobstatus_slack_rate_limit_wait_seconds", "jobstatus_outbox_messages",
        "jobstatus_outbox_oldest_age_seconds", "jobstatus_change_to_reply_seconds",
        "jobstatus_loop_lag_seconds"}


@pytest.mark.settings(outage_note_after=60)
async def test_a_backend_in_an_outage_is_down_and_up_again_when_it_answers(harness: Harness) -> None:
    h = harness
    h.sim.epm_di.add_job(1881, steps=[Step(0, -1)])
    h.sim.fusion.add_job(44046, steps=[Step(0, "RUNNING")])
    await h.watch("watch epm-demo 1881")
    await h.watch("watch fusion-demo 44046")
    h.sim.epm_di.retry_after = 0  # EPM asks for 120 s; the poller's own backoff is enough here
    h.sim.epm_di.maintenance = True
    m = await scraped_until(
        h,
        lambda m: (
            m.get("jobstatus_backend_up", backend="epm-demo") == 0
            and m.get("jobstatus_backend_up", backend="fusion-demo") == 1
        ),
        "epm-demo down, fusion up",
    )
    assert (m.get("jobstatus_polls_total", backend="epm-demo", outcome="unavailable") or 0) >= 1
    assert m.get("jobstatus_jobs_tracked", backend="epm-demo") == 1  # still polled: an outage is ridden out

    h.sim.epm_di.maintenance = False
    await scraped_until(
        h, lambda m: m.get("jobstatus_backend_up", backend="epm-demo") == 1, "epm-demo up again", timeout=30
    )
