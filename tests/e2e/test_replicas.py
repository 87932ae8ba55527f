"""Replicas: two and three real `jobstatus-bot run` processes on one PostgreSQL database (tests/pg.py's
throwaway cluster), the same fake Slack app and the same vendor simulators, one of them killed with SIGKILL.

What is asserted is what reached the fake Slack and the vendors: every watch made through either replica is
polled and delivered, one parent per watch, each terminal state in its thread, at most one repeated reply per
channel the dead replica was sending to, posts to a channel at least a second apart whichever replica sent
them; and each replica's own /healthz says how many jobs it schedules (they add up to the jobs polled, each
job in one schedule). Skipped like test_postgres.py when no cluster can be started (failed under CI).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.orm import Session

from bot import store
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.notifier import CHANNEL_BURST, CHANNEL_GAP
from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.store import Job, PollResult, Store, leases
from tests.e2e.test_postgres import query
from tests.e2e.test_process import SECRET, bot_env, free_port, start_bot

LEASE = 3.0  # seconds (the smallest lease_seconds the config takes): a dead replica's work moves in ~3-4 s
INTERVAL = 1.0  # seconds between polls of a job
CHANNELS = ["C0001", "C0002", "C0003", "C0004"]


@dataclass
class Cluster:
    """The bot's replicas and what they talk to."""

    tmp: Path
    url: str
    sim: SimulatorServer
    slack: FakeSlack
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    # METRICS_ADDR: /metrics and the detailed /healthz
    metrics_ports: dict[str, int] = field(default_factory=dict)
    socket: bool = False  # Socket Mode: each replica opens its own connection to the fake Slack

    async def start(self, name: str) -> None:
        port = free_port()
        env = bot_env(self.tmp, self.slack, port)
        env["DATABASE_URL"] = self.url
        inside = free_port()
        env["METRICS_ADDR"] = f"127.0.0.1:{inside}"
        if self.socket:
            env["SLACK_APP_TOKEN"] = self.slack.app_token
        self.procs[name] = await start_bot(env, self.tmp / f"{name}.log")
        self.ports[name] = port
        self.metrics_ports[name] = inside

    def user(self, name: str) -> SlackUser:
        return SlackUser(f"http://127.0.0.1:{self.ports[name]}/slack/events", SECRET, self.slack)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    async def scheduled(self) -> dict[str, int]:
        """Each live replica's count of jobs in its schedule, from its /healthz."""
        out = {}
        async with aiohttp.ClientSession() as session:
            for name in self.procs:
                async with session.get(f"http://127.0.0.1:{self.metrics_ports[name]}/healthz") as r:
                    out[name] = int((await r.json())["scheduled"])
        return out

    def name_of(self, replica_id: str) -> str | None:
        """Which of our processes a replica id (host:pid:random) is."""
        pid = int(replica_id.split(":")[-2])
        return next((n for n, p in self.procs.items() if p.pid == pid), None)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    slack = FakeSlack()
    await slack.start()
    for ch in CHANNELS[2:]:
        slack.add_channel(ch, f"ops-{ch[-1]}")
    config = {"backends": demo_backends(sim, poll_interval=INTERVAL), "lease_seconds": LEASE}
    (tmp_path / "jobstatus.yaml").write_text(yaml.safe_dump(config))
    c = Cluster(tmp_path, postgres_url, sim, slack)
    try:
        yield c
    finally:
        for proc in c.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in c.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await slack.stop()
        await sim.stop()


async def wait_until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def status_polls(sim: SimulatorServer, job_id: int, since: float) -> list[float]:
    return [r.at for r in sim.fusion.requests
            if r.method == "GET" and r.path.endswith(f"/jobRequests/{job_id}") and r.at >= since]


def parent_of(slack: FakeSlack, channel: str, job_id: int) -> list[Any]:
    return [m for m in slack.messages(channel) if f"`{job_id}`" in str(m.blocks) or f"`{job_id}`" in m.text]


def repeated_replies(slack: FakeSlack, channel: str, ts: str) -> int:
    texts = Counter(r.text for r in slack.thread(channel, ts) if not r.files)
    return sum(n - 1 for n in texts.values())


def ahead_of_pace(slack: FakeSlack, channel: str) -> float:
    """How many posts (parents and replies; edits are not posts) to one channel ran ahead of the notifier's
    pace, a bucket of CHANNEL_BURST at once refilled at one per CHANNEL_GAP s (bot/engine/notifier/pace.py),
    replayed over the posts as they reached Slack, whichever replica sent them: 0 when the pace held."""
    posts = sorted([m.posted_at for m in slack.messages(channel)]
                   + [r.posted_at for m in slack.messages(channel) for r in slack.thread(channel, m.ts)])
    tokens, worst = float(CHANNEL_BURST), 0.0
    for prev, at in zip([posts[0], *posts], posts, strict=False):
        tokens = min(float(CHANNEL_BURST), tokens + (at - prev) / CHANNEL_GAP) - 1.0
        worst = max(worst, -tokens)
    return worst


async def test_replicas_share_the_jobs_evenly_and_a_joining_one_gets_its_share(cluster: Cluster) -> None:
    c = cluster
    await c.start("a")
    await c.start("b")
    jobs = list(range(8100, 8112))
    for i, job_id in enumerate(jobs):
        c.sim.fusion.add_job(job_id, steps=[Step(0, "RUNNING")])
        via = "ab"[i % 2]  # watches made through either replica's HTTP endpoint
        result = await c.user(via).command(
            f"watch fusion-demo {job_id}", channel_id=CHANNELS[i % len(CHANNELS)]
        )
        await c.slack.wait_for(
            lambda r=result: any("Watching fusion-demo job" in p.text for p in r.responses()), timeout=30
        )  # after "Checking …"

    async def even(n: int) -> dict[str, int] | None:
        counts = await c.scheduled()
        return counts if sorted(counts.values()) == sorted([len(jobs) // n] * n) else None

    counts = await wait_until(lambda: even(2), 30, "6 jobs in each replica's schedule")
    owners = query(c.url, "SELECT owner, count(*) FROM jobs WHERE polling GROUP BY owner")
    assert sorted(n for _, n in owners) == [6, 6] and {c.name_of(o) for o, _ in owners} == {"a", "b"}, owners
    await c.slack.wait_for(lambda: all(len(parent_of(c.slack, CHANNELS[i % 4], j)) == 1
                                       for i, j in enumerate(jobs)), timeout=30)  # every parent, once

    since = time.time()
    await asyncio.sleep(5 * INTERVAL)
    for job_id in jobs:  # each job polled at its interval by one replica, not by two
        polls = status_polls(c.sim, job_id, since)
        gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
        assert len(polls) >= 3, (job_id, polls)
        assert min(gaps) > 0.5 * INTERVAL, (job_id, gaps)

    await c.start("c")  # joins: the others give back their excess, it takes its share
    counts = await wait_until(lambda: even(3), 30, "4 jobs in each of three replicas' schedules")
    assert set(counts) == {"a", "b", "c"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{c.metrics_ports['c']}/metrics") as r,
    ):
        exposition = await r.text()
    assert "jobstatus_replicas_live 3.0" in exposition
    assert 'jobstatus_jobs_tracked{backend="fusion-demo"} 4.0' in exposition

    for job_id in jobs:
        c.sim.fusion.set_state(job_id, "SUCCEEDED")
    for i, job_id in enumerate(jobs):
        channel = CHANNELS[i % len(CHANNELS)]
        [parent] = parent_of(c.slack, channel, job_id)
        await c.slack.wait_for(lambda ch=channel, ts=parent.ts: any(
            "succeeded" in r.text.lower() for r in c.slack.thread(ch, ts)), timeout=30)
    for i, job_id in enumerate(jobs):
        channel = CHANNELS[i % len(CHANNELS)]
        [parent] = parent_of(c.slack, channel, job_id)
        assert repeated_replies(c.slack, channel, parent.ts) == 0
    for channel in CHANNELS:  # ~1 post/s per channel with three replicas sending
        assert c.slack.messages(channel) and ahead_of_pace(c.slack, channel) <= 0.1, channel
    await wait_until(lambda: _all_zero(c), 30, "empty schedules once every job ended")


async def _all_zero(c: Cluster) -> bool:
    return all(n == 0 for n in (await c.scheduled()).values())


async def test_a_replica_killed_during_state_changes_and_sends_is_taken_over(cluster: Cluster) -> None:
    c = cluster
    await c.start("a")
    await c.start("b")
    jobs = []
    for i in range(12):
        job_id = 8200 + i
        end = "FAILED" if i % 3 == 0 else "SUCCEEDED"
        t0 = 14 + i * 0.3  # state changes while the kill lands, and replies queued behind the pacing
        c.sim.fusion.add_job(job_id, steps=[
            Step(0, "ENQUEUED"), Step(t0 - 6, "RUNNING"), Step(t0 - 3, "IN_PROGRESS", {"progress": 40}),
            Step(t0, end, {"message": f"job {job_id} ended"} if end == "FAILED" else {})])
        channel = CHANNELS[i % 2]  # two channels: six watches each, so sends queue up at ~1/s
        result = await c.user("ab"[i % 2]).command(f"watch fusion-demo {job_id}", channel_id=channel)
        await c.slack.wait_for(
            lambda r=result: any("Watching fusion-demo job" in p.text for p in r.responses()), timeout=30
        )
        jobs.append((job_id, channel, end))
    await wait_until(lambda: _both_poll(c), 30, "both replicas polling")

    # kill the replica that sends to a channel, while replies to the RUNNING change are going out
    await c.slack.wait_for(lambda: sum(len(c.slack.thread(ch, m.ts)) for ch in CHANNELS[:2]
                                       for m in c.slack.messages(ch)) >= 3, timeout=30)
    holders = query(c.url, "SELECT owner FROM channel_leases")
    victim = next((c.name_of(o) for (o,) in holders if c.name_of(o)), "a")
    assert victim is not None
    held = sum(1 for (o,) in holders if c.name_of(o) == victim)
    survivor = "b" if victim == "a" else "a"
    killed_at = time.monotonic()
    c.kill(victim)

    await wait_until(lambda: _owns_all(c, survivor), 30, f"{survivor} polling every job")
    took = time.monotonic() - killed_at

    def final_reply(job_id: int, channel: str, end: str) -> bool:
        return any(end.lower() in r.text.lower()
                   for m in parent_of(c.slack, channel, job_id) for r in c.slack.thread(channel, m.ts))

    for job_id, channel, end in jobs:
        await c.slack.wait_for(lambda j=job_id, ch=channel, e=end: final_reply(j, ch, e), timeout=60)
    repeated = 0
    for job_id, channel, _end in jobs:
        found = parent_of(c.slack, channel, job_id)
        assert len(found) == 1, (job_id, [m.ts for m in found])  # one parent per watch
        repeated += repeated_replies(c.slack, channel, found[0].ts)
        texts = [r.text.lower() for r in c.slack.thread(channel, found[0].ts)]
        assert any("running" in t for t in texts), texts  # no state change lost either
    # at most the one in flight per channel it was sending to
    assert repeated <= max(held, 1), (repeated, held)
    for channel in CHANNELS[:2]:
        assert ahead_of_pace(c.slack, channel) <= 0.1, channel  # the pace held across the takeover too
    print(
        f"\nreplicas: kill -9 of 1 of 2 during sends ({held} channels): its jobs taken over in {took:.1f} s "
        f"(lease {LEASE:g} s), 0 lost, 0 duplicate parents, {repeated} repeated replies"
    )


async def test_in_socket_mode_each_replica_connects_and_slack_hands_each_request_to_one(
    cluster: Cluster,
) -> None:
    c = cluster
    c.socket = True
    await c.start("a")
    await c.start("b")
    await c.slack.wait_for(lambda: len(c.slack.open_sockets()) == 2, timeout=30)  # one connection each
    user = SlackUser.over_socket(c.slack)

    async def watch(job_id: int, channel: str) -> None:
        c.sim.fusion.add_job(job_id, steps=[Step(0, "RUNNING")])
        result = await user.command(f"watch fusion-demo {job_id}", channel_id=channel)
        await c.slack.wait_for(lambda: any("Watching fusion-demo job" in r.text for r in result.responses()),
                               timeout=30)  # after the ack's "Checking …"

    for job_id in (8300, 8301, 8302):  # each to one connection, as Slack does (the fake: the newest)
        await watch(job_id, "C0001")
    c.kill("b")  # one replica dies: Slack hands what comes next to the connection that is left
    await c.slack.wait_for(
        lambda: len([s for s in c.slack.open_sockets() if not s.draining]) == 1, timeout=30
    )
    for job_id in (8303, 8304, 8305):
        await watch(job_id, "C0002")
    for job_id in range(8300, 8306):
        c.sim.fusion.set_state(job_id, "SUCCEEDED")
    # the dead replica's jobs are polled by the other, every change delivered
    for job_id in range(8300, 8306):
        channel = "C0001" if job_id < 8303 else "C0002"
        [parent] = parent_of(c.slack, channel, job_id)
        await c.slack.wait_for(lambda ch=channel, ts=parent.ts: any(
            "succeeded" in r.text.lower() for r in c.slack.thread(ch, ts)), timeout=60)
    # each request acked once
    assert len({e.envelope_id for e in c.slack.envelopes if e.ack is not None}) == 6


async def _both_poll(c: Cluster) -> bool:
    counts = await c.scheduled()
    return len(counts) == 2 and all(n > 0 for n in counts.values())


async def _owns_all(c: Cluster, name: str) -> bool:
    active = query(c.url, "SELECT count(*) FROM jobs WHERE polling")[0][0]
    return active == 0 or (await c.scheduled()).get(name) == active


# -- the lease queries themselves (PostgreSQL's SQL, bot/store/leases.py) ------------------------------------


def _seed(s: Session, n: int) -> None:
    s.add_all(Job(backend="fusion-demo", job_id=str(9000 + i), next_poll_at=float(i)) for i in range(n))


def _owners(url: str) -> dict[str | None, set[int]]:
    out: dict[str | None, set[int]] = {}
    for owner, pk in query(url, "SELECT owner, id FROM jobs WHERE polling"):
        out.setdefault(owner, set()).add(pk)
    return out


async def test_leases_share_fence_and_pass_on_when_a_replica_goes_silent(postgres_url: str) -> None:
    db, other = Store(postgres_url), Store(postgres_url)
    try:
        db.upgrade()
        await db.run(_seed, 10)
        backends = ["fusion-demo"]
        alone = await db.run(leases.balance, "r1", 15.0, backends)
        assert (alone.live, alone.share, len(alone.owned), len(alone.claimed)) == (1, 10, 10, 10)

        assert await other.run(leases.heartbeat, "r2", 15.0) == 2  # r2 joins
        gives = await db.run(leases.balance, "r1", 15.0, backends)
        assert (gives.live, gives.share, len(gives.owned), len(gives.released)) == (2, 5, 5, 5)
        takes = await other.run(leases.balance, "r2", 15.0, backends)
        assert takes.owned == set(gives.released) and not takes.owned & gives.owned
        assert _owners(postgres_url) == {"r1": gives.owned, "r2": takes.owned}

        # fencing: r1 writes nothing of a job r2 owns, neither a result nor a next poll
        theirs = min(takes.owned)
        before = query(
            postgres_url, "SELECT checked_at, next_poll_at, phase FROM jobs WHERE id = :pk", pk=theirs
        )
        running = JobStatus(job_id="x", phase=Phase.RUNNING, vendor_status="RUNNING")
        [applied] = await db.run(store.apply_results, [PollResult(theirs, running, 50.0, 60.0)], "r1")
        assert applied.polling is False  # the poller drops it
        await db.run(store.set_next_polls, [(theirs, 99.0)], "r1")
        assert query(postgres_url, "SELECT checked_at, next_poll_at, phase FROM jobs WHERE id = :pk",
                     pk=theirs) == before
        [applied] = await other.run(store.apply_results, [PollResult(theirs, running, 50.0, 60.0)], "r2")
        assert applied.changed and applied.polling  # its owner writes

        # channels: one sender at a time
        assert await db.run(leases.hold_channels, "r1", 15.0, ["C1", "C2"]) == {"C1", "C2"}
        assert await other.run(leases.hold_channels, "r2", 15.0, ["C2", "C3"]) == {"C3"}
        assert await db.run(leases.hold_channels, "r1", 15.0, ["C1", "C2"]) == {"C1", "C2"}  # renewed

        # r1 goes silent (kill -9): once its heartbeat (its jobs' lease) and its channel leases are older than
        # the lease, r2 takes all
        with other.engine.begin() as con:
            con.execute(text("UPDATE replicas SET heartbeat = heartbeat - 100 WHERE id = 'r1'"))
            con.execute(text("UPDATE channel_leases SET lease_until = lease_until - 100 WHERE owner = 'r1'"))
        alone = await other.run(leases.balance, "r2", 15.0, backends)
        assert (alone.live, len(alone.owned), set(alone.claimed)) == (1, 10, gives.owned)
        assert await other.run(leases.hold_channels, "r2", 15.0, ["C1", "C2"]) == {"C1", "C2"}

        # a clean stop gives everything back at once
        await other.run(leases.leave, "r2")
        assert _owners(postgres_url) == {None: gives.owned | takes.owned}
        assert query(postgres_url, "SELECT count(*) FROM channel_leases") == [(0,)]
    finally:
        db.close()
        other.close()


async def test_a_replica_whose_session_is_gone_is_dead_before_its_heartbeat_ages(postgres_url: str) -> None:
    """kill -9 closes the replica's LISTEN session (named by its id): the others take its jobs at their next
    heartbeat, not a lease later; while the session is connected it is live."""
    import psycopg
    from sqlalchemy.engine import make_url

    db = Store(postgres_url)
    try:
        db.upgrade()
        await db.run(_seed, 10)
        assert len((await db.run(leases.balance, "r1", 15.0, ["fusion-demo"])).owned) == 10
        # r1 is older than one lease (no longer within its grace to connect), its heartbeat fresh
        with db.engine.begin() as con:
            con.execute(text("UPDATE replicas SET started = started - 100 WHERE id = 'r1'"))
        conninfo = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True, application_name="r1"):
            assert await db.run(leases.heartbeat, "r2", 15.0) == 2  # r1's session is there: live
            takes = await db.run(leases.balance, "r2", 15.0, ["fusion-demo"])
            assert (takes.live, len(takes.claimed)) == (2, 0)  # r1 keeps its jobs (r2 waits for them back)
        # the session is gone (the process died): r1 is dead although its heartbeat is young
        for _ in range(50):
            if await db.run(leases.heartbeat, "r2", 15.0) == 1:
                break
            await asyncio.sleep(0.1)
        takes = await db.run(leases.balance, "r2", 15.0, ["fusion-demo"])
        assert (takes.live, len(takes.owned)) == (1, 10)
    finally:
        db.close()


async def test_a_job_being_polled_is_not_given_back_until_a_later_heartbeat(postgres_url: str) -> None:
    """Given back mid-poll, the taker would poll it again at once (Vault refuses a second status call of a job
    within 10 s; bench.scale saw 580 such refusals when a replica joined): `keep` holds such jobs back."""
    db = Store(postgres_url)
    try:
        db.upgrade()
        await db.run(_seed, 10)
        alone = await db.run(leases.balance, "r1", 15.0, ["fusion-demo"])
        latest = sorted(alone.owned, key=lambda pk: -pk)[:2]  # due last: the first to go without `keep`
        assert await db.run(leases.heartbeat, "r2", 15.0) == 2
        gives = await db.run(leases.balance, "r1", 15.0, ["fusion-demo"], latest)
        assert len(gives.released) == 5 and not set(latest) & set(gives.released)
        assert set(latest) <= gives.owned
    finally:
        db.close()


async def test_a_heartbeat_rewrites_no_job_row_and_a_dead_owners_job_can_be_claimed(
    postgres_url: str,
) -> None:
    """The heartbeat is the lease of all a replica's jobs: renewing one lease per job rewrote every owned row
    each lease/3 (at 25,000 jobs 1 to 3 s of PostgreSQL per heartbeat, with their row locks held)."""
    db = Store(postgres_url)
    try:
        db.upgrade()
        await db.run(_seed, 40)
        first = await db.run(leases.balance, "r1", 15.0, ["fusion-demo"])
        assert len(first.owned) == 40
        versions = query(postgres_url, "SELECT id, xmin::text FROM jobs ORDER BY id")
        again = await db.run(leases.balance, "r1", 15.0, ["fusion-demo"])
        assert again.owned == first.owned and not again.claimed and not again.released
        # no row rewritten
        assert query(postgres_url, "SELECT id, xmin::text FROM jobs ORDER BY id") == versions

        pk = min(first.owned)  # a user watches it through r2 while r1 lives: r1 keeps it
        assert await db.run(leases.claim_job, "r2", 15.0, pk) is False
        with db.engine.begin() as con:  # r1 falls silent for longer than the lease
            con.execute(text("UPDATE replicas SET heartbeat = heartbeat - 16 WHERE id = 'r1'"))
        assert await db.run(leases.claim_job, "r2", 15.0, pk) is True
        assert query(postgres_url, "SELECT owner FROM jobs WHERE id = :pk", pk=pk) == [("r2",)]
    finally:
        db.close()


async def test_replicas_claiming_at_the_same_moment_never_take_the_same_job(postgres_url: str) -> None:
    stores = [Store(postgres_url) for _ in range(3)]
    try:
        stores[0].upgrade()
        await stores[0].run(_seed, 300)
        for i, db in enumerate(stores):
            await db.run(leases.heartbeat, f"r{i}", 15.0)
        shares = await asyncio.gather(*(db.run(leases.balance, f"r{i}", 15.0, ["fusion-demo"])
                                        for i, db in enumerate(stores)))
        owned = [b.owned for b in shares]
        assert all(len(o) == 100 for o in owned), [len(o) for o in owned]
        assert len(set().union(*owned)) == 300
    finally:
        for db in stores:
            db.close()


async def test_a_replica_reads_what_is_owed_only_in_channels_no_other_replica_holds(
    postgres_url: str,
) -> None:
    db = Store(postgres_url)
    try:
        db.upgrade()
        for n, channel in enumerate(["C1", "C2", "C3"]):
            st = JobStatus(job_id=str(n), phase=Phase.RUNNING, vendor_status="RUNNING")
            await db.run(store.create_watch, "fusion-demo", st, channel, "U1", now=1.0, interval=30.0,
                         watch_timeout=3600.0, first_reply=None)  # owes its parent
        assert await db.run(leases.hold_channels, "r1", 15.0, ["C1"]) == {"C1"}
        assert await db.run(leases.hold_channels, "r2", 15.0, ["C2"]) == {"C2"}

        def channels(replica: str | None) -> Callable[[Session], list[str]]:
            return lambda s: sorted(m.channel for m in store.pending(s, 10.0, replica=replica))

        assert await db.run(channels(None)) == ["C1", "C2", "C3"]  # alone (SQLite's way): everything
        assert await db.run(channels("r1")) == ["C1", "C3"]  # its own and the free one, not r2's
        assert await db.run(channels("r2")) == ["C2", "C3"]
    finally:
        db.close()
