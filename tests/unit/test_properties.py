"""Property tests: random button payloads and random vendor bytes give only typed, handled errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import store
from bot.backends.values import lenient_json
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.inbound.listeners.actions import Click
from bot.operations.watching import UserError, Watching
from bot.store import Store

_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
_json: Any = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=12)
_ids = st.one_of(st.just("1"), st.just("2"), st.text(max_size=25), st.integers().map(str))


def _payloads() -> st.SearchStrategy[dict[str, Any]]:
    action = st.fixed_dictionaries({}, optional={
        "action_id": st.sampled_from(["jobstatus_stop", "x"]) | _json, "value": _ids | _json})
    return st.fixed_dictionaries({}, optional={
        "actions": st.lists(action | _json, max_size=2) | _json,
        "channel": st.fixed_dictionaries({}, optional={"id": st.sampled_from(["C1", "C2"]) | _json}) | _json,
        "container": st.fixed_dictionaries({}, optional={
            "message_ts": st.sampled_from(["1.1", "2.2"]) | _json,
            "channel_id": st.sampled_from(["C1", "C2"]) | _json}) | _json,
        "message": _json,
        "user": _json,
    })


def _watching(db: Store) -> Watching:
    """Which watch a click belongs to is the store's question only."""
    return Watching(settings=None, backends={}, db=db, poller=None, notifier=None, slack=None,  # type: ignore[arg-type]
                    clock=time.time)


def _seed(s: Any) -> None:
    st_ = JobStatus("42", Phase.RUNNING, "RUNNING")
    w, _, _ = store.create_watch(s, "b", st_, "C1", "U1", now=time.time(), interval=30, watch_timeout=60,
                                 first_reply=None)
    w.parent_ts = "1.1"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_payloads())
def test_any_button_payload_maps_to_its_watch_or_a_user_error(
        tmp_path: Path, payload: dict[str, Any]) -> None:
    db = Store(f"sqlite:///{tmp_path / 'p.db'}")
    db.upgrade()

    async def go() -> int | None:
        if not await db.run(lambda s: s.get(store.Watch, 1)):
            await db.run(_seed)
        try:
            click = Click.of(_safe(payload))
            return await _watching(db).clicked_watch(click.value, click.channel, click.message_ts)
        except UserError:
            return None

    try:
        got = asyncio.run(go())
    finally:
        db.close()
    if got is not None:  # only the real watch, clicked on its own message in its own channel
        assert got == 1
        assert str(payload["actions"][0]["value"]) == "1"


def _safe(body: dict[str, Any]) -> dict[str, Any]:
    # Bolt hands listeners a dict parsed from JSON: keys are strings, values JSON values
    return {k: v for k, v in body.items() if isinstance(k, str)}


@given(st.binary(max_size=300) | _json.map(lambda v: repr(v).encode()))
def test_lenient_json_returns_a_value_or_raises_value_error(raw: bytes) -> None:
    try:
        lenient_json(raw)
    except ValueError:
        pass
