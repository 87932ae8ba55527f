"""The buttons' listener against recording ack/respond and Watching over doubles (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot import store
from bot.domain.jobs import ButtonAction
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.inbound.home import HomeTab
from bot.inbound.listeners.actions import BUTTONS, Buttons
from bot.store import Store, Watch
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, Recorder, watching

NOT_OURS = "That button does not belong to a watch I know."


@pytest.fixture
async def rig(db: Store, clock: FakeClock) -> tuple[Buttons, Watch, BackendDouble]:
    w, _slack, backend = watching(db, clock)
    backend.jobs["1"] = JobStatus("1", Phase.RUNNING, "RUNNING")
    await w.watch(backend, "1", "C1", "U1")
    [(watch, _job)] = await db.run(store.channel_watches, "C1")
    # the Home tab is not clicked here (tests/e2e/test_views.py clicks it): its Slack client is never called
    home = HomeTab(AsyncWebClient(token="xoxb-unused"), db, w, w.backends, w.settings, clock)
    return Buttons(w, home), watch, backend


async def click(buttons: Buttons, action: ButtonAction, value: str, channel: str, ts: str | None) -> Recorder:
    ack, respond = Recorder(), Recorder()
    body: dict[str, Any] = {"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": channel},
                            "container": {"message_ts": ts, "channel_id": channel}, "message": {"ts": ts},
                            "actions": [{"action_id": action.value, "value": value}],
                            "response_url": "https://hooks.slack.test/response"}
    await buttons.clicked(ack=ack, body=body, respond=respond)  # type: ignore[arg-type]
    assert ack.calls == [{}]  # acknowledged before anything slow
    return respond


def test_the_listener_takes_our_buttons_and_only_those() -> None:
    assert all(BUTTONS.match(a.value) for a in ButtonAction)
    assert not BUTTONS.match("jobstatus_stop2") and not BUTTONS.match("other_stop")


async def test_stop_on_the_watchs_own_message_stops_it(
        rig: tuple[Buttons, Watch, BackendDouble], db: Store) -> None:
    buttons, watch, _ = rig
    respond = await click(buttons, ButtonAction.STOP, str(watch.pk), "C1", watch.parent_ts)
    assert respond.texts == ["Stopped watching. The thread stays; *Rewatch* on the message starts again."]
    [w] = await db.run(store.watches_of, watch.job_pk, active=None)
    assert (w.active, w.ended_reason) == (False, "stopped")


async def test_refresh_polls_and_answers_nothing(rig: tuple[Buttons, Watch, BackendDouble]) -> None:
    buttons, watch, backend = rig
    asked = len(backend.asked)
    respond = await click(buttons, ButtonAction.REFRESH, str(watch.pk), "C1", watch.parent_ts)
    assert respond.calls == [] and len(backend.asked) == asked + 1


@pytest.mark.parametrize(("value", "channel", "ts"), [
    ("999", "C1", None),  # no such watch
    ("1", "C2", None),  # another channel's message
    ("1", "C1", "1.000001"),  # another message of the channel
    ("", "C1", None),
    ("1e3", "C1", None),
    ("²", "C1", None),  # a digit to str.isdigit, not to int(): it raised ValueError
    ("１", "C1", None),  # a fullwidth digit: int() read it as watch 1
])
async def test_a_button_that_is_not_the_watchs_gets_a_plain_answer(
        rig: tuple[Buttons, Watch, BackendDouble], value: str, channel: str, ts: str | None,
        db: Store) -> None:
    buttons, watch, _ = rig
    respond = await click(buttons, ButtonAction.STOP, value, channel, ts or watch.parent_ts)
    assert respond.texts == [NOT_OURS]
    assert [w.active for w in await db.run(store.watches_of, watch.job_pk, active=None)] == [True]
