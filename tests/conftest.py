"""Shared fixtures: vendor simulators and a fake Slack on loopback, and the real bot running against them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.app import Runtime
from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import BackendConfig, Environment, Settings, settings_from_dict
from tests.pg import postgres_cluster, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _patient_front_door(monkeypatch: pytest.MonkeyPatch) -> None:
    """The front door's read deadlines (bot/inbound/front.py: 4 s for headers, 4 s for a body) are for hostile
    peers. A bot in a test shares two cores with the whole suite: starved of the CPU for seconds, it would cut
    off the tests' own requests (a reset connection) for reasons that have nothing to do with the test. Here
    they are a hang guard; tests/e2e/test_front.py sets its own short ones, and a bot started as a process has
    the real."""
    monkeypatch.setattr("bot.inbound.front.HEADER_DEADLINE", 30.0)
    monkeypatch.setattr("bot.inbound.front.BODY_DEADLINE", 30.0)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    server = SimulatorServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def backend_config(sim: SimulatorServer, type_name: str, auth: dict[str, Any] | None = None,
                   **kw: Any) -> BackendConfig:
    """A BackendConfig for `type_name` pointing at the running simulator."""
    raw: dict[str, Any] = {
        "type": type_name,
        "base_url": sim.base_url(type_name),
        "auth": auth or {"type": "bearer", "token": "test-token"},
        "timeout": 5,
    }
    raw.update(kw)
    return BackendConfig.model_validate(raw)


class FakeClock:
    """A clock tests move by hand (give it to a simulator's and an adapter's `clock`): no sleeping."""

    def __init__(self, start: float = 1_766_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the whole bot: real Runtime (Bolt over HTTP), fake Slack, simulators, a temp database -----------------

SIGNING_SECRET = "test-signing-secret"
# JOBSTATUS_SECRET_KEYS of the tests' bots: stored secrets are encrypted (bot/store/sealing.py), as in
# production
SECRET_KEYS = Fernet.generate_key().decode()


def opened(stored: str) -> str:
    """A secret as the tests' bots stored it (`fernet:<token>`), decrypted: what a test compares with the
    vendor's."""
    assert stored.startswith("fernet:"), "a secret stored unencrypted"
    return Fernet(SECRET_KEYS).decrypt(stored.removeprefix("fernet:").encode()).decode()


@dataclass
class Harness:
    """A running bot and everything around it; `restart()` brings up a new process state on the same DB."""

    sim: SimulatorServer
    slack: FakeSlack
    settings: Settings
    env: Environment
    runtime: Runtime
    user: SlackUser

    async def restart(self) -> None:
        await self.runtime.stop()
        self.runtime = await start_runtime(self.settings, self.env)
        self.user = SlackUser(self.runtime.events_url, SIGNING_SECRET, self.slack)

    def parents(self, channel: str = "C0001") -> list[Any]:
        return self.slack.messages(channel)

    def replies(self, channel: str = "C0001", index: int = 0) -> list[Any]:
        return self.slack.thread(channel, self.parents(channel)[index].ts)

    async def watch(self, text: str, channel: str = "C0001", user: str = "U0001") -> Any:
        """Run `/jobstatus watch …` (or another command about a job) and wait for the bot's final answer to
        it, which follows the "Checking …" line."""
        result = await self.user.command(text, channel_id=channel, user_id=user)
        assert result.status == 200, result.text
        await result.wait_responses(2)
        return result


def settings_for(sim: SimulatorServer, poll_interval: float = 0.2, top: dict[str, Any] | None = None,
                 **overrides: Any) -> Settings:
    """The demo's five backends against `sim`, polled every `poll_interval`; `top` sets top-level keys."""
    backends = demo_backends(sim, poll_interval=poll_interval)
    backends["vault-demo"]["poll_interval"] = poll_interval
    for name, extra in overrides.items():
        backends[name].update(extra)
    return settings_from_dict({"backends": backends, **(top or {})}, "<test config>")


async def start_runtime(settings: Settings, env: Environment) -> Runtime:
    runtime = Runtime(settings, env, host="127.0.0.1", tick=0.05)
    runtime.metrics.count_every = 0.2  # /metrics counts watches and the outbox this often (5 s in production)
    await runtime.start()
    if runtime.socket is not None:  # Socket Mode connects in the background; the tests talk over it at once
        await asyncio.wait_for(runtime.socket.wait_connected(), 20)
    # Vault's one-call-per-10-s rule has its own tests (test_backend_vault); end to end it would only wait
    runtime.backends["vault-demo"].min_poll_interval = 0.0  # type: ignore[misc]
    runtime.poller.sweep_every = 0.1
    return runtime


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fs = FakeSlack()
    await fs.start()
    try:
        yield fs
    finally:
        await fs.stop()


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The harness's database: a temp SQLite file; a module overrides this fixture to use another (see
    tests/e2e/test_postgres.py). JOBSTATUS_TEST_DATABASE=postgres runs every harness test on PostgreSQL."""
    if os.environ.get("JOBSTATUS_TEST_DATABASE", "sqlite") == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def harness(sim: SimulatorServer, slack: FakeSlack, database_url: str,
                  request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    configure_simulators(sim)
    sim.vault.job_poll_window = 0.0  # the 10 s Vault rule has its own tests; here it would only slow things
    marker = request.node.get_closest_marker("backends")
    top = request.node.get_closest_marker("settings")
    settings = settings_for(sim, top=top.kwargs if top else None, **(marker.kwargs if marker else {}))
    env_marker = request.node.get_closest_marker("environment")
    env = Environment(slack_bot_token=slack.token, slack_signing_secret=SIGNING_SECRET,
                      slack_api_url=slack.api_url, database_url=database_url, port=0, secret_keys=SECRET_KEYS,
                      **(env_marker.kwargs if env_marker else {}))
    runtime = await start_runtime(settings, env)
    h = Harness(sim, slack, settings, env, runtime, SlackUser(runtime.events_url, SIGNING_SECRET, slack))
    try:
        yield h
    finally:
        await h.runtime.stop()


# -- a server that accepts and never answers (timeouts) ----------------------------------------------------

@dataclass
class Silent:
    """A TCP server on loopback that accepts every connection and never says a word."""

    port: int = 0
    open_now: int = 0
    most_at_once: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_now += 1
        self.most_at_once = max(self.most_at_once, self.open_now)
        self.writers.append(writer)
        try:
            await reader.read()  # until the client gives up and closes
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def silent() -> AsyncIterator[Silent]:
    s = Silent()
    server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
    s.port = server.sockets[0].getsockname()[1]
    try:
        yield s
    finally:
        for w in s.writers:
            w.close()
        server.close()
