"""One benchmark run: an idle baseline, then per size a steady phase and a back-to-back phase.

Per size (all on 127.0.0.1):

1. The simulators start in their own process (bench/simproc.py) with `n` running jobs spread over the
   five backends; the fake Slack starts here, with channels of at most ~100 watches each.
2. Seeding, before the bot starts: one parent message per watch in the fake Slack, and the watch written
   with the bot's own `store.create_watch` (what `/jobstatus watch` runs), its parent's ts set, with the
   job's state as the bot's own adapter reads it from the simulator, so the first polls find nothing new.
3. The real bot starts (`python -m bot run`), timed until /healthz counts every watch in its schedule.
   A sample of watches is then made through signed `/jobstatus watch` requests, as Slack sends them.
4. Steady phase, at the configured interval: after a warm-up of one interval, a measured window in which
   jobs move to their done state at recorded moments (each in its own channel); signed commands (help,
   list, status) arrive in its second half only, so the first half gives the CPU of polling alone. The
   bot's CPU (user+system) and RSS come from psutil, polls and requests from the simulators' counters,
   the reply's arrival from the fake Slack. CPU used meanwhile by other processes on the machine is
   recorded too (a busy machine disturbs the figures).
5. Back-to-back phase: the bot restarted on the same database with a tiny interval for the per-job
   backends (Fusion, EPM DI, Planning; Vault has a 10 s floor per job, Immuta one batch per cycle), then
   the raw httpx loop (bench/raw.py) making the same requests at the same concurrency for the same time,
   once with the bot's own client (same transport) and once with httpx's own transport; all counted by
   the simulators. Commands arrive meanwhile (ack time while the poller is as busy as it gets).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench import profile
from bench.jobs import BY_BACKEND, SAMPLE_BASE, TEMPLATE_INDEX, VENDORS, job_id, split
from bench.procs import BotProc, SimProc, cpu_seconds, run_raw
from bot.domain.status import JobStatus
from bot.offline.setup import demo_backends
from bot.offline.slack import Change, FakeSlack, SlackUser

SECRET = "bench-signing-secret"
USER = "U0001"
B2B_BACKENDS = ("fusion-demo", "epm-demo", "planning-demo")  # one status request per job, no vendor floor
VAULT_FLOOR = 10.0


@dataclass
class Params:
    mode: str
    sizes: list[int]
    interval: float
    window: float
    warmup: float
    b2b_window: float
    b2b_warmup: float
    changes: int  # most jobs moved to done per size (one per channel)
    acks: int  # signed commands during the steady window
    b2b_acks: int  # ... and during the back-to-back window
    samples: int  # watches made through signed /jobstatus watch
    baseline_window: float
    b2b_interval: float = 0.05
    watches_per_channel: int = 100
    seed: int = 20261122
    keep: bool = False
    profile: bool = False  # sample the bot with py-spy during the measured windows


@dataclass
class Pending:
    backend: str
    index: int
    job_id: str
    channel: str
    parent_ts: str
    interval: float
    at: float  # planned moment
    changed_at: float | None = None
    reply_at: float | None = None
    text: str = ""


def bot_config(sim: SimProc, interval: float, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    backends = demo_backends(sim, poll_interval=interval)
    backends["vault-demo"]["poll_interval"] = max(interval, VAULT_FLOOR)
    for b in backends.values():  # the load channels get every job's details, as before `details` existed
        b["details"] = "anywhere"
    if only is not None:
        backends = {k: v for k, v in backends.items() if k in only}
    # every seeded watch and signed request is one synthetic user's (USER) in a few channels: the benchmarks
    # measure the bot under that load, not the quotas (bot/operations/quotas.py), which would refuse it as one
    # person's flood
    unlimited = {"active": 10_000_000, "per_minute": 10_000_000}
    return {"backends": backends, "quotas": {"user": unlimited, "token": unlimited, "channel": unlimited}}


def effective_interval(backend: str, interval: float) -> float:
    return max(interval, VAULT_FLOOR) if backend == "vault-demo" else interval


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def dist(values: list[float], scale: float = 1.0) -> dict[str, Any]:
    return {"n": len(values), "p50": _r(pct(values, 0.5), scale), "p99": _r(pct(values, 0.99), scale),
            "max": _r(max(values) if values else None, scale)}


def _r(x: float | None, scale: float = 1.0, nd: int = 3) -> float | None:
    return None if x is None else round(x * scale, nd)


async def sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.time()))


def counts_delta(c0: dict[str, Any], c1: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for backend, v1 in c1["vendors"].items():
        v0 = c0["vendors"][backend]
        routes = {
            k: n - v0["routes"].get(k, 0) for k, n in v1["routes"].items() if n - v0["routes"].get(k, 0)
        }
        out[backend] = {"status": v1["status"] - v0["status"], "polls": v1["polls"] - v0["polls"],
                        "total": v1["total"] - v0["total"], "routes": routes}
    return out


class Sampler:
    """RSS of a process once a second (bounded by the caller's deadline)."""

    def __init__(self) -> None:
        self.rss: list[int] = []

    async def run(self, ps: psutil.Process, until: float) -> None:
        while time.time() < until:
            with contextlib.suppress(psutil.Error):
                self.rss.append(int(ps.memory_info().rss))
            await asyncio.sleep(1.0)


class AckLog:
    def __init__(self) -> None:
        self.elapsed: list[float] = []
        self.failed: list[str] = []

    async def run(self, user: SlackUser, plan: list[tuple[float, str, str]]) -> None:
        for at, text, channel in plan:
            await sleep_until(at)
            try:
                r = await user.command(text, channel_id=channel)
            except Exception as exc:  # recorded, the run goes on
                self.failed.append(f"{text}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            if r.status != 200:
                self.failed.append(f"{text}: HTTP {r.status} {r.text[:100]}")
                continue
            self.elapsed.append(r.elapsed)

    def summary(self) -> dict[str, Any]:
        return {**dist(self.elapsed, 1000.0), "unit": "ms", "failed": len(self.failed),
                "first_failures": self.failed[:5]}


def ack_plan(start: float, span: float, n: int, channels: list[str], jobs: list[tuple[str, str]]) -> list[
        tuple[float, str, str]]:
    """`n` commands evenly over `span`: help, list (in a busy channel) and status of watched jobs."""
    plan = []
    for j in range(n):
        kind = j % 3
        if kind == 0:
            text = "help"
        elif kind == 1:
            text = "list"
        else:
            backend, jid = jobs[j % len(jobs)]
            text = f"status {backend} {jid}"
        plan.append((start + span * (j + 0.25) / max(n, 1), text, channels[j % len(channels)]))
    return plan


async def template_statuses(sim: SimProc, interval: float) -> dict[str, JobStatus]:
    """The status each backend's adapter reads for a running benchmark job (seeded watches start in it)."""
    from bot.backends import build_backends
    from bot.support.config import settings_from_dict

    for v in VENDORS:
        await sim.post("/jobs", {"backend": v.backend, "start": TEMPLATE_INDEX, "count": 1})
    settings = settings_from_dict(bot_config(sim, interval), "<bench>")
    backends = build_backends(settings, "<bench>")
    out = {}
    try:
        for name, b in backends.items():
            out[name] = await b.status(job_id(name, TEMPLATE_INDEX))
    finally:
        for b in backends.values():
            await b.aclose()
    return out


def plan_watches(fs: FakeSlack, n: int, per_backend: dict[str, int], channels: list[str]
                 ) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, int, str, str]]]:
    """Watch i: backend i % 5, channel (i // 5) % len(channels) (so watch c*5+k is backend k in channel c),
    its parent pre-posted in the fake Slack. Returns the plan for `seed_database` (backend, job id, channel,
    parent ts) and, per watch, where it is (backend, index among that backend's jobs, channel, parent ts)."""
    plan: list[tuple[str, str, str, str]] = []
    index: dict[str, int] = dict.fromkeys(per_backend, 0)
    where: list[tuple[str, int, str, str]] = []
    for i in range(n):
        backend = VENDORS[i % len(VENDORS)].backend
        k = index[backend]
        index[backend] += 1
        channel = channels[(i // len(VENDORS)) % len(channels)]
        jid = job_id(backend, k)
        ts = fs.seed_message(channel, f"{backend} job {jid} (seeded by the benchmark)")
        plan.append((backend, jid, channel, ts))
        where.append((backend, k, channel, ts))
    return plan, where


def seed_database(db_url: str, plan: list[tuple[str, str, str, str]], templates: dict[str, JobStatus],
                  interval: float, watch_timeout: float, rng: random.Random) -> None:
    """Write the watches with the bot's own store functions, as `/jobstatus watch` does after its check:
    `store.create_watch` in transactions of 2,000; the parent is already posted (its ts set, nothing owed);
    next polls spread over one interval, as a running bot's are."""
    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from bot import store

    db = store.Store(db_url)
    try:
        db.upgrade()
        for i in range(0, len(plan), 2000):
            with Session(db.engine, expire_on_commit=False) as s, s.begin():
                now = time.time()
                for backend, jid, channel, ts in plan[i: i + 2000]:
                    every = effective_interval(backend, interval)
                    st = dataclasses.replace(templates[backend], job_id=jid)
                    watch, job, _ = store.create_watch(s, backend, st, channel, USER, now=now, interval=every,
                                                       watch_timeout=watch_timeout, first_reply=None)
                    watch.parent_ts = ts
                    job.next_poll_at = now + rng.uniform(0.0, every)
                s.execute(delete(store.Outbox))
    finally:
        db.close()


@dataclass
class SizeResult:
    watches: int
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def run_baseline(p: Params, logdir: Path) -> dict[str, Any]:
    """The bot with no watch at all: start-up, idle CPU and RSS (what per-watch figures are measured over)."""
    work = Path(tempfile.mkdtemp(prefix="jobstatus-bench-"))
    sim = SimProc(logdir / "sim-baseline.log")
    fs = FakeSlack()
    bot: BotProc | None = None
    try:
        await sim.start()
        await fs.start()
        bot = BotProc(work, "baseline", slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET,
                      db_url=f"sqlite:///{work / 'bot.db'}", config=bot_config(sim, p.interval))
        startup = await bot.start(expect_scheduled=0)
        await asyncio.sleep(1.0)
        cpu0, t0 = bot.cpu(), time.monotonic()
        await asyncio.sleep(p.baseline_window)
        cpu = bot.cpu() - cpu0
        wall = time.monotonic() - t0
        rss = bot.rss()
        stop = await bot.stop()
        problems = bot.log_problems()
        return {"startup_s": _r(startup["all_scheduled_s"]), "rss_mb": _r(rss / 2**20, nd=1),
                "cpu_pct": _r(100 * cpu / wall, nd=2), "window_s": _r(wall, nd=1), "stop": stop,
                "log": problems}
    finally:
        if bot is not None:
            await bot.stop()
            _keep_log(bot.log, logdir)
        await fs.stop()
        await sim.stop()
        shutil.rmtree(work, ignore_errors=True)


def _keep_log(path: Path, logdir: Path) -> None:
    with contextlib.suppress(OSError):
        if path.exists() and path.resolve().parent != logdir.resolve():
            shutil.copy(path, logdir / path.name)


async def run_size(n: int, p: Params, baseline: dict[str, Any], logdir: Path, say: Any) -> SizeResult:
    res = SizeResult(n)
    d = res.data
    rng = random.Random(p.seed + n)
    work = Path(tempfile.mkdtemp(prefix=f"jobstatus-bench-{n}-"))
    db_url = f"sqlite:///{work / 'bot.db'}"
    sim = SimProc(logdir / f"sim-{n}.log")
    fs = FakeSlack()
    bots: list[BotProc] = []
    unsubscribe = None
    me = psutil.Process()
    try:
        await sim.start()
        await fs.start()
        per_backend = split(n)
        n_changes = max(1, min(p.changes, n // 10))
        n_channels = max(n_changes, math.ceil(n / p.watches_per_channel))
        channels = [f"CB{c:06d}" for c in range(n_channels)]
        for c, ch in enumerate(channels):
            fs.add_channel(ch, f"bench-{c}")
        n_sample_channels = max(1, math.ceil(p.samples / len(VENDORS)))
        sample_channels = [f"CS{c:04d}" for c in range(n_sample_channels)]
        for c, ch in enumerate(sample_channels):
            fs.add_channel(ch, f"bench-sample-{c}")
        d["setup"] = {"channels": n_channels, "per_backend": per_backend, "interval_s": p.interval,
                      "vault_interval_s": max(p.interval, VAULT_FLOOR), "sample_watches": p.samples}

        # -- jobs in the simulators, watches in the database ------------------------------------------------
        t0 = time.monotonic()
        for v in VENDORS:
            await sim.post("/jobs", {"backend": v.backend, "start": 0, "count": per_backend[v.backend]})
            await sim.post("/jobs", {"backend": v.backend, "start": SAMPLE_BASE,
                                     "count": math.ceil(p.samples / len(VENDORS))})
        templates = await template_statuses(sim, p.interval)
        await sim.post("/samples/clear")  # the raw loop copies the bot's requests, not these
        plan, where = plan_watches(fs, n, per_backend, channels)
        t_slack = time.monotonic() - t0
        await asyncio.get_running_loop().run_in_executor(
            None, seed_database, db_url, plan, templates, p.interval, 24 * 3600.0, rng)
        d["seed"] = {"seconds": _r(time.monotonic() - t0, nd=2), "fake_slack_seconds": _r(t_slack, nd=2),
                     "watches": n, "via": "store.create_watch (bot.store), in transactions of 2,000"}
        say(f"  seeded {n:,} watches in {d['seed']['seconds']} s")

        # -- start the bot ---------------------------------------------------------------------------------
        bot = BotProc(work, f"{n}-steady", slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET,
                      db_url=db_url, config=bot_config(sim, p.interval))
        bots.append(bot)
        startup = await bot.start(expect_scheduled=n)
        d["startup"] = {k: (_r(v, nd=3) if isinstance(v, float) else v) for k, v in startup.items()
                        if k != "healthz"}
        if startup["field"] != "scheduled":
            res.notes.append(
                "start-up counted with /healthz `jobs_polling` (the database count): this bot's "
                "/healthz has no `scheduled` field yet, so 'all scheduled' is when /healthz answers"
            )
        say(f"  bot up: /healthz after {startup['healthz_s']:.2f} s, {n:,} scheduled after "
            f"{startup['all_scheduled_s']:.2f} s ({startup['field']})")
        user = SlackUser(bot.events_url, SECRET, fs, timeout=30.0)

        # -- sample watches through signed /jobstatus watch --------------------------------------------------
        watch_acks: list[float] = []
        watch_done: list[float] = []
        watch_failed: list[str] = []
        gate = asyncio.Semaphore(10)

        async def watch_one(s: int) -> None:
            backend = VENDORS[s % len(VENDORS)].backend
            jid = job_id(backend, SAMPLE_BASE + s // len(VENDORS))
            channel = sample_channels[(s // len(VENDORS)) % len(sample_channels)]
            async with gate:
                t = time.time()
                try:
                    r = await user.command(f"watch {backend} {jid}", channel_id=channel)
                    if r.status != 200:
                        watch_failed.append(f"{backend} {jid}: HTTP {r.status}")
                        return
                    watch_acks.append(r.elapsed)
                    # "Checking …", then the answer; slow is a figure, not a failure
                    *_, answer = await r.wait_responses(2, timeout=180)
                except Exception as exc:
                    watch_failed.append(f"{backend} {jid}: {type(exc).__name__}: {str(exc)[:200]}")
                    return
                if not answer.text.startswith("Watching"):
                    watch_failed.append(f"{backend} {jid}: {answer.text[:120]}")
                watch_done.append(answer.at - t)

        await asyncio.gather(*(watch_one(s) for s in range(p.samples)))
        parents = sum(len(fs.messages(ch)) for ch in sample_channels)
        d["watch_commands"] = {"sent": p.samples, "parents_posted": parents, "ack": dist(watch_acks, 1000.0),
                               "answered": dist(watch_done, 1000.0), "unit": "ms", "failed": watch_failed[:5]}
        if watch_failed or parents != p.samples:
            res.errors.append(
                f"/jobstatus watch: {len(watch_failed)} failed, {parents}/{p.samples} parents posted"
            )

        # -- steady phase ------------------------------------------------------------------------------------
        polled = n + p.samples
        await asyncio.sleep(p.warmup)
        awaiting: dict[tuple[str, str], Pending] = {}
        # one change per channel (watch c*5+k is in channel c, backend k); backends polled slower than the
        # interval (Vault below its 10 s floor, in --quick) would only stretch the wait for the last replies
        movable = [
            k for k, v in enumerate(VENDORS) if effective_interval(v.backend, p.interval) <= p.interval
        ]
        changed = [c * len(VENDORS) + movable[c % len(movable)] for c in range(n_changes)]
        t_start = time.time() + 0.2
        for j, i in enumerate(changed):
            backend, k, channel, ts = where[i]
            awaiting[(channel, ts)] = Pending(backend, k, job_id(backend, k), channel, ts,
                                              effective_interval(backend, p.interval),
                                              t_start + p.window * (j + 0.5) / n_changes)

        def on_change(ch: Change) -> None:
            if ch.kind != "message" or ch.channel is None or ch.ts is None:
                return
            try:
                msg = fs.message(ch.channel, ch.ts)
            except KeyError:
                return
            if not msg.is_reply or msg.thread_ts is None:
                return
            pend = awaiting.get((ch.channel, msg.thread_ts))
            if pend is not None and pend.changed_at is not None and pend.reply_at is None:
                pend.reply_at = msg.posted_at
                pend.text = msg.text[:160]
                if all(x.reply_at is not None for x in awaiting.values()):
                    all_replied.set()

        all_replied = asyncio.Event()
        unsubscribe = fs.subscribe(on_change)

        async def make_changes() -> None:
            for pend in sorted(awaiting.values(), key=lambda x: x.at):
                await sleep_until(pend.at)
                answer = await sim.post("/change", {"backend": pend.backend, "index": pend.index})
                pend.changed_at = float(answer["at"])

        # `status` asks the vendor; not Immuta's, whose requests per cycle are a figure of their own
        status_jobs = [(b, job_id(b, 0)) for b in ("fusion-demo", "epm-demo", "planning-demo")]
        acks = AckLog()
        sampler = Sampler()
        await sleep_until(t_start)
        prof = (await profile.record(bot.proc.pid, p.window, logdir / f"profile-{n}-steady.txt")  # type: ignore[union-attr]
                if p.profile else None)
        calls0 = len(fs.calls)
        h0, hz0 = await bot.healthz_timed()
        c0, cpu0, me0, busy0 = await sim.counts(), bot.cpu(), cpu_seconds(me), machine_busy()
        log0 = bot.log.stat().st_size
        w0 = time.monotonic()
        # first half: polling and the state changes' messages only; second half: slash commands arrive too
        half = p.window / 2
        tasks = [
            asyncio.create_task(make_changes()),
            asyncio.create_task(
                acks.run(user, ack_plan(t_start + half, half, p.acks, channels, status_jobs))
            ),
            asyncio.create_task(sampler.run(bot.ps, t_start + p.window)),  # type: ignore[arg-type]
        ]
        await asyncio.sleep(half)
        cm, cpum = await sim.counts(), bot.cpu()
        wm = time.monotonic()
        await asyncio.sleep(max(0.0, w0 + p.window - time.monotonic()))
        c1, cpu1, me1, busy1 = await sim.counts(), bot.cpu(), cpu_seconds(me), machine_busy()
        wall = time.monotonic() - w0
        log_growth = bot.log.stat().st_size - log0
        h1, hz1 = await bot.healthz_timed()
        load = other_load(busy0, busy1, (cpu1 - cpu0) + (c1["cpu_s"] - c0["cpu_s"]) + (me1 - me0), wall)
        rss = bot.rss()
        async with asyncio.timeout(p.window + 60):
            await asyncio.gather(*tasks)
        if p.profile:
            d["profile_steady"] = await profile.finish(prof, logdir / f"profile-{n}-steady.txt", 60)
        # replies to the last changes may come up to an interval (and a little) later; more when the bot
        # polls slower than its interval asks (it cannot keep up), up to 10 minutes
        keeping_up = min(1.0, max(0.05, _keep_up(c0, c1, wall, per_backend, p)))
        grace = min(600.0, max(effective_interval(b, p.interval) for b in BY_BACKEND) * 1.5 / keeping_up + 15)
        deadline = time.time() + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_replied.wait(), deadline - time.time())
        unsubscribe()
        unsubscribe = None

        delta = counts_delta(c0, c1)
        samples_per = {b: sum(1 for s in range(p.samples) if VENDORS[s % len(VENDORS)].backend == b)
                       for b in per_backend}
        # jobs polled on average over the window: a job moved to done at t is polled until the poll that sees
        # it (t/interval polls, then one more), so it counts as polled for min(window, t + interval)
        jobs_avg = {b: float(per_backend[b] + samples_per[b]) for b in per_backend}
        for x in awaiting.values():
            if x.changed_at is not None:
                jobs_avg[x.backend] -= 1 - min(wall, max(0.0, x.changed_at - t_start) + x.interval) / wall
        hours = wall / 3600
        polls = sum(v["polls"] for v in delta.values())
        expected = sum(jobs_avg[b] / effective_interval(b, p.interval) for b in per_backend)
        cpu = cpu1 - cpu0
        immuta = delta["immuta-demo"]
        cycles = wall / p.interval
        steady: dict[str, Any] = {
            "window_s": _r(wall, nd=2),
            "jobs_polled": polled,
            "polls": polls,
            "polls_per_s": _r(polls / wall, nd=1),
            "expected_polls_per_s": _r(expected, nd=1),
            "polls_vs_expected": _r(polls / wall / expected if expected else None, nd=3),
            "bot_polls_per_s": (
                _r((h1["polls"] - h0["polls"]) / wall, nd=1)
                if h0 and h1 and "polls" in h1 and "polls" in h0
                else None
            ),
            # at the window's start and end (Docker's check allows 5)
            "healthz_latency_s": [_r(hz0), _r(hz1)],
            "bot_cpu_s": _r(cpu),
            "bot_cpu_pct": _r(100 * cpu / wall, nd=2),
            "bot_cpu_ms_per_1000_polls": _r(1000 * 1000 * cpu / polls if polls else None, nd=1),
            "halves": {
                "no_commands": _cpu_span(c0, cm, cpu0, cpum, wm - w0),
                "with_commands": {
                    **_cpu_span(cm, c1, cpum, cpu1, w0 + wall - wm),
                    "commands_per_s": _r(p.acks / (w0 + wall - wm), nd=2),
                },
            },
            "rss_mb": _r(rss / 2**20, nd=1),
            "rss_peak_mb": _r(max(sampler.rss or [rss]) / 2**20, nd=1),
            "rss_per_watch_kb": _r((rss / 2**20 - (baseline.get("rss_mb") or 0)) * 1024 / polled, nd=2),
            "requests": delta,
            "requests_per_job_hour": {
                b: _r(delta[b]["total"] / (jobs_avg[b] * hours), nd=2) for b in per_backend
            },
            "status_requests_per_job_hour": {
                b: _r(delta[b]["status"] / (jobs_avg[b] * hours), nd=2) for b in per_backend
            },
            # requests per cycle over the started 200s of jobs (1 = one request per cycle per 200 jobs)
            "immuta_requests_per_cycle_per_200_jobs": _r(
                immuta["status"] / cycles / math.ceil(jobs_avg["immuta-demo"] / 200)
                if jobs_avg["immuta-demo"]
                else None,
                nd=3,
            ),
            "sim_cpu_pct": _r(100 * (c1["cpu_s"] - c0["cpu_s"]) / wall, nd=1),
            "bench_cpu_pct": _r(100 * (me1 - me0) / wall, nd=1),
            "other_load_pct": load["other_pct"],
            "steal_pct": load["steal_pct"],
            "log_mb_per_day": _r(log_growth / wall * 86400 / 2**20, nd=1),
            "slack_calls": _calls_by_method(fs, calls0),
        }
        d["steady"] = steady
        replied = [x for x in awaiting.values() if x.reply_at is not None and x.changed_at is not None]
        lat = [x.reply_at - x.changed_at for x in replied]  # type: ignore[operator]
        over = [x.reply_at - x.changed_at - x.interval for x in replied]  # type: ignore[operator]
        by_backend = {}
        for b in per_backend:
            mine = [x.reply_at - x.changed_at for x in replied if x.backend == b]  # type: ignore[operator]
            by_backend[b] = {**dist(mine), "interval_s": effective_interval(b, p.interval)}
        lost = [x for x in awaiting.values() if x.reply_at is None]
        d["latency"] = {"changes": len(awaiting), "replied": len(replied), "lost": len(lost), **dist(lat),
                        "unit": "s", "interval_s": p.interval, "p99_minus_interval_s": _r(pct(over, 0.99)),
                        "max_minus_interval_s": _r(max(over) if over else None), "by_backend": by_backend,
                        "reply_example": replied[0].text if replied else None}
        if lost:
            res.errors.append(f"{len(lost)} of {len(awaiting)} state changes got no thread reply within "
                              f"{grace:.0f} s of the window's end: "
                              + ", ".join(f"{x.backend} {x.job_id}" for x in lost[:5]))
        d["ack_steady"] = acks.summary()
        if acks.failed:
            res.errors.append(f"{len(acks.failed)} slash commands failed during the steady window")
        d["healthz_end"] = h1
        d["steady_stop"] = await bot.stop()
        d["steady_log"] = bot.log_problems()
        say(
            f"  steady: {steady['polls_per_s']} polls/s (expected {steady['expected_polls_per_s']}), "
            f"CPU {steady['bot_cpu_pct']}%, RSS {steady['rss_mb']} MB, p99 change->reply "
            f"{d['latency']['p99']} s"
        )

        # -- back to back: the bot, then the raw client loop -------------------------------------------------
        samples = await sim.get("/samples")
        b2b_jobs = {b: per_backend[b] for b in B2B_BACKENDS}
        concurrency = {
            b: int(bot_config(sim, p.interval)["backends"][b].get("max_concurrency", 8)) for b in B2B_BACKENDS
        }
        bot2 = BotProc(work, f"{n}-b2b", slack_token=fs.token, slack_api_url=fs.api_url, secret=SECRET,
                       db_url=db_url, config=bot_config(sim, p.b2b_interval, only=B2B_BACKENDS))
        bots.append(bot2)
        d["b2b_startup"] = {k: (_r(v) if isinstance(v, float) else v)
                            for k, v in (await bot2.start(expect_scheduled=None)).items() if k != "healthz"}
        user2 = SlackUser(bot2.events_url, SECRET, fs, timeout=30.0)
        await asyncio.sleep(p.b2b_warmup)
        acks2 = AckLog()
        t_b = time.time()
        c0, cpu0, me0, busy0 = await sim.counts(), bot2.cpu(), cpu_seconds(me), machine_busy()
        w0 = time.monotonic()
        ack_task = asyncio.create_task(acks2.run(user2, ack_plan(t_b, p.b2b_window, p.b2b_acks, channels,
                                                                 status_jobs[:3])))
        prof = (await profile.record(bot2.proc.pid, p.b2b_window, logdir / f"profile-{n}-b2b.txt")  # type: ignore[union-attr]
                if p.profile else None)
        await asyncio.sleep(p.b2b_window)
        c1, cpu1, me1, busy1 = await sim.counts(), bot2.cpu(), cpu_seconds(me), machine_busy()
        wall_bot = time.monotonic() - w0
        b2b_load = other_load(
            busy0, busy1, (cpu1 - cpu0) + (c1["cpu_s"] - c0["cpu_s"]) + (me1 - me0), wall_bot
        )
        if p.profile:
            d["profile_b2b"] = await profile.finish(prof, logdir / f"profile-{n}-b2b.txt", 60)
        async with asyncio.timeout(p.b2b_window + 60):
            await ack_task
        d["b2b_stop"] = await bot2.stop()
        d["b2b_log"] = bot2.log_problems()
        bot_delta = counts_delta(c0, c1)
        bot_cpu = cpu1 - cpu0
        bot_sim_cpu = c1["cpu_s"] - c0["cpu_s"]
        d["ack_busy"] = acks2.summary()
        if acks2.failed:
            res.errors.append(f"{len(acks2.failed)} slash commands failed during the back-to-back window")

        b2b_config = bot_config(sim, p.b2b_interval, only=B2B_BACKENDS)["backends"]
        spec_backends = []
        for b in B2B_BACKENDS:
            v = BY_BACKEND[b]
            sample = next(
                (
                    s
                    for key, s in samples.items()
                    if s["type"] == v.type_name and key.startswith("GET ") and key.endswith("/{job_id}")
                ),
                None,
            )
            if sample is None:
                raise RuntimeError(f"no status request of {b} was seen from the bot to copy")
            url = f"http://127.0.0.1:{sim.sim_port}{sample['path']}" + (
                f"?{sample['query']}" if sample["query"] else ""
            )
            spec_backends.append(
                {
                    "backend": b,
                    "config": b2b_config[b],
                    "url": url,
                    "method": sample["method"],
                    "headers": sample["headers"],
                    "job_id": sample["match"]["job_id"],
                    "count": b2b_jobs[b],
                    "concurrency": concurrency[b],
                }
            )
        bot_rate = {b: bot_delta[b]["status"] / wall_bot for b in B2B_BACKENDS}
        bot_total = sum(bot_rate.values())
        bot_polls = sum(bot_delta[b]["polls"] for b in B2B_BACKENDS)
        raws = {}
        for kind in ("bot", "httpx"):
            raws[kind] = await raw_phase(kind, sim, spec_backends, p, logdir / f"raw-{n}-{kind}.log", me)
            if raws[kind]["errors"]:
                res.errors.append(f"the raw loop ({kind} client) got {raws[kind]['errors']} failed requests")
        raw_total = raws["bot"]["requests_per_s"]
        d["back_to_back"] = {
            "backends": list(B2B_BACKENDS), "concurrency_per_backend": concurrency,
            "bot_interval_s": p.b2b_interval, "jobs": b2b_jobs,
            "bot": {"window_s": _r(wall_bot, nd=2), "requests_per_s": _r(bot_total, nd=1),
                    "by_backend": {b: _r(x, nd=1) for b, x in bot_rate.items()},
                    "cpu_pct": _r(100 * bot_cpu / wall_bot, nd=1),
                    "cpu_ms_per_1000_polls": _r(1e6 * bot_cpu / bot_polls if bot_polls else None, nd=1),
                    "sim_cpu_pct": _r(100 * bot_sim_cpu / wall_bot, nd=1),
                    "polls_per_job_per_s": _r(bot_total / sum(b2b_jobs.values()), nd=2),
                    "other_load_pct": b2b_load["other_pct"], "steal_pct": b2b_load["steal_pct"],
                    "other_requests": {b: bot_delta[b]["total"] - bot_delta[b]["status"] for b in bot_delta}},
            "raw": raws["bot"],
            "raw_httpx_transport": raws["httpx"],
            "ratio": _r(bot_total / raw_total if raw_total else None),
            "ratio_by_backend": {b: _r(bot_rate[b] / raws["bot"]["by_backend"][b]
                                       if raws["bot"]["by_backend"][b] else None) for b in B2B_BACKENDS},
            "ratio_vs_httpx_transport": _r(bot_total / raws["httpx"]["requests_per_s"]
                                           if raws["httpx"]["requests_per_s"] else None),
        }
        if bot_total / sum(b2b_jobs.values()) >= 0.5 and (d["back_to_back"]["bot"]["cpu_pct"] or 0) < 90:
            res.notes.append(
                f"{n:,} watches, back to back: the bot polled each job "
                f"{bot_total / sum(b2b_jobs.values()):.1f} "
                "times a second (the 0.5 s tick allows 2) at "
                f"{d['back_to_back']['bot']['cpu_pct']}% CPU: with this few jobs its pace is set by the "
                "poller's tick, not by CPU, so the ratio to the raw loop says little here"
            )
        say(f"  back-to-back: bot {bot_total:.0f} req/s; raw loop with the bot's client "
            f"{raws['bot']['requests_per_s']:.0f} req/s (ratio {d['back_to_back']['ratio']}), "
            f"with httpx's own transport {raws['httpx']['requests_per_s']:.0f} req/s")

        for what, value in (("steady window", steady["other_load_pct"]),
                            ("back-to-back bot window", d["back_to_back"]["bot"]["other_load_pct"]),
                            ("raw loop window", raws["bot"]["other_load_pct"]),
                            ("raw loop (httpx transport) window", raws["httpx"]["other_load_pct"])):
            if value is not None and value > 10:
                res.notes.append(
                    f"{n:,} watches, {what}: other processes used {value:.0f}% of a core meanwhile; "
                    "its figures are disturbed (a quiet machine gives cleaner ones)"
                )
        for name, log in (("steady", d["steady_log"]), ("back-to-back", d["b2b_log"])):
            if log["errors"] or log["tracebacks"]:
                res.errors.append(
                    f"bot log ({name}): {log['errors']} ERROR lines, {log['tracebacks']} tracebacks; "
                    f"first: {log['first_errors'][:1]}"
                )
        failed_slack = [f"{c.method}: {c.error}" for c in fs.calls if not c.ok] + [
            f"{c.method}: {c.error}" for c in fs.failed_calls]
        if failed_slack:
            res.errors.append(f"{len(failed_slack)} Slack API calls failed: {failed_slack[:3]}")
        return res
    except Exception as exc:
        import traceback

        res.errors.append(f"{type(exc).__name__}: {str(exc)[:500]}")
        res.notes.append(traceback.format_exc()[-2000:])
        return res
    finally:
        if unsubscribe is not None:
            unsubscribe()
        for proc in bots:
            with contextlib.suppress(Exception):
                await proc.stop()
            _keep_log(proc.log, logdir)
        await fs.stop()
        await sim.stop()
        if p.keep:
            res.notes.append(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, stolen seconds) so far."""
    t = psutil.cpu_times()
    busy = t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return float(busy), float(getattr(t, "steal", 0.0))


def other_load(b0: tuple[float, float], b1: tuple[float, float], ours: float, wall: float) -> dict[str, Any]:
    """CPU the rest of the machine used meanwhile (other processes: a test run, a build), % of one core;
    above ~10% the figures of that window are disturbed. `steal`: time the hypervisor gave elsewhere."""
    return {"other_pct": _r(max(0.0, 100 * (b1[0] - b0[0] - ours) / wall), nd=1),
            "steal_pct": _r(100 * (b1[1] - b0[1]) / wall, nd=1)}


async def raw_phase(kind: str, sim: SimProc, spec_backends: list[dict[str, Any]], p: Params, log: Path,
                    me: psutil.Process) -> dict[str, Any]:
    """The raw loop with `kind` of client, counted by the simulators over exactly its measured span."""
    marks: dict[str, Any] = {}

    async def on_phase(msg: dict[str, Any]) -> None:
        marks[msg["phase"]] = (await sim.counts(), time.monotonic(), cpu_seconds(me), machine_busy())

    raw = await run_raw({"warmup": p.b2b_warmup, "duration": p.b2b_window, "client": kind,
                         "backends": spec_backends}, on_phase, log, limit_s=p.b2b_warmup + p.b2b_window + 60)
    (r0, t0, me0, busy0), (r1, t1, me1, busy1) = marks["measuring"], marks["done"]
    delta = counts_delta(r0, r1)
    wall = t1 - t0
    rate = {b["backend"]: delta[b["backend"]]["status"] / wall for b in spec_backends}
    done = sum(c["ok"] for c in raw["counts"].values())
    sim_cpu = r1["cpu_s"] - r0["cpu_s"]
    load = other_load(busy0, busy1, raw["cpu_s"] + sim_cpu + (me1 - me0), wall)
    return {"client": kind, "window_s": _r(wall, nd=2), "requests_per_s": _r(sum(rate.values()), nd=1),
            "by_backend": {b: _r(x, nd=1) for b, x in rate.items()},
            "cpu_pct": _r(100 * raw["cpu_s"] / raw["elapsed"], nd=1),
            "cpu_ms_per_1000_requests": _r(1e6 * raw["cpu_s"] / done if done else None, nd=1),
            "sim_cpu_pct": _r(100 * sim_cpu / wall, nd=1), "other_load_pct": load["other_pct"],
            "steal_pct": load["steal_pct"], "errors": sum(c["errors"] for c in raw["counts"].values()),
            "own_counts": raw["counts"]}


def _cpu_span(
    c0: dict[str, Any], c1: dict[str, Any], cpu0: float, cpu1: float, wall: float
) -> dict[str, Any]:
    polls = sum(v["polls"] for v in counts_delta(c0, c1).values())
    cpu = cpu1 - cpu0
    return {
        "window_s": _r(wall, nd=2),
        "polls_per_s": _r(polls / wall, nd=1),
        "bot_cpu_pct": _r(100 * cpu / wall, nd=2),
        "bot_cpu_ms_per_1000_polls": _r(1e6 * cpu / polls if polls else None, nd=1),
    }


def _keep_up(
    c0: dict[str, Any], c1: dict[str, Any], wall: float, per_backend: dict[str, int], p: Params
) -> float:
    """Polls done over polls the interval asks for, in the window (below 1: the bot falls behind)."""
    polls = sum(v["polls"] for v in counts_delta(c0, c1).values())
    expected = sum(n / effective_interval(b, p.interval) for b, n in per_backend.items()) * wall
    return polls / expected if expected else 1.0


def _calls_by_method(fs: FakeSlack, since: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in fs.calls[since:]:
        out[c.method] = out.get(c.method, 0) + 1
    return out
