"""The Home tab's throttle: at most one run per window per key, a request inside the window run once at its
end (coalesced, never dropped), `now` at once and covering what waited."""

from __future__ import annotations

import asyncio

from bot.inbound.home import Throttle


class Runs:
    def __init__(self) -> None:
        self.keys: list[str] = []
        self.at: list[float] = []

    async def __call__(self, key: str) -> None:
        self.keys.append(key)
        self.at.append(asyncio.get_running_loop().time())


async def settle(throttle: Throttle) -> None:
    while throttle._due:
        await asyncio.gather(*throttle._due.values(), return_exceptions=True)


async def test_a_first_request_runs_at_once_and_requests_in_the_window_coalesce_into_one_at_its_end() -> None:
    runs = Runs()
    t = Throttle(0.3, runs)
    t.request("U1")
    await asyncio.sleep(0.05)
    assert runs.keys == ["U1"]
    for _ in range(5):  # inside the window: none dropped, none run now
        t.request("U1")
    assert runs.keys == ["U1"]
    await settle(t)
    assert runs.keys == ["U1", "U1"]
    assert runs.at[1] - runs.at[0] >= 0.3 - 0.01  # not before the window's end (asyncio's clock granularity)


async def test_keys_have_their_own_windows() -> None:
    runs = Runs()
    t = Throttle(0.3, runs)
    t.request("U1")
    t.request("U2")
    await settle(t)
    assert sorted(runs.keys) == ["U1", "U2"]


async def test_now_runs_at_once_and_takes_the_place_of_the_waiting_run() -> None:
    runs = Runs()
    t = Throttle(10.0, runs)
    await t.now("U1")
    t.request("U1")  # waits for the window's end
    assert "U1" in t._due
    await t.now("U1")  # the person opened the tab again: shown now, the waiting run is not needed
    assert runs.keys == ["U1", "U1"] and t._due == {}
    await t.close()


async def test_a_failing_run_is_logged_and_later_runs_go_on(caplog: object) -> None:
    calls: list[str] = []

    async def flaky(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("Slack said no")

    t = Throttle(0.0, flaky)
    await t.now("U1")
    await t.now("U1")
    assert calls == ["U1", "U1"]
