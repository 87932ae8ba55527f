"""What the bot tells Prometheus on GET /metrics: every metric, in one registry per Runtime.

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): the `jobstatus_`
prefix, base units (seconds), `_total` on counters (prometheus_client adds it). No label takes an unbounded
value: `backend` is a configured backend's name, `method` one of the Slack methods the bot calls (the ones
bot/slack/errors.py classifies) or, for the HTTP API, an HTTP method; `outcome` and `loop` come from the fixed
sets below, an API request's `route` is its template and `status` an HTTP status. No job id, user id, channel
id or watch id is ever a label.

Figures are taken where they happen (a poll, a Slack call, a vendor request), read from memory when
Prometheus scrapes (jobs the poller tracks), or counted in the database every `count_every` seconds on the
store's thread (active watches, the outbox): a scrape never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric

from bot import store
from bot.domain.errors import BackendError, Unavailable
from bot.domain.slack_limits import LIMITS
from bot.slack.errors import METHODS, Outcome
from bot.store import Store

log = logging.getLogger(__name__)

# The `<name>_created` series prometheus_client adds beside each counter and histogram only repeat when the
# process started; without them every metric is one series per label set, as the table in docs/operations.md
# lists.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client does not annotate it

# The Slack methods a label may name: those Slack's error table knows (every method the bot calls), and those
# with a budget (bot/slack/budget.py: views.publish too).
SLACK_METHODS = frozenset(METHODS) | frozenset(LIMITS)
# What a Slack call came to: `ok`, what Slack's refusal means (bot/slack/errors.py's Outcome, named as a
# label), or `unknown` for a code no table knows (and a call that failed in between, as an upload step can).
SLACK_OUTCOMES = ("ok", *(o.name.lower() for o in Outcome if o is not Outcome.SENT), "unknown")
LOOPS = ("poller", "notifier")

# Bucket bounds in seconds: a vendor answers in milliseconds up to its timeout (30 s by default); a reply
# reaches Slack well within a second of the poll that saw its change, or minutes later behind Retry-After, a
# busy channel or a refused token; a loop runs late by milliseconds when healthy (the poller by up to its
# tick) and by seconds when the event loop or the poller is overloaded.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REPLY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

COUNT_EVERY = 5.0  # seconds between counts of active watches and the outbox


class _Read:
    """A gauge by one label whose values are read from the bot's memory at each scrape (a custom collector,
    as prometheus_client has it): nothing to keep up to date between scrapes."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.read: Callable[[], Mapping[str, int]] = dict

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=[self.label])

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for value, n in sorted(self.read().items()):
            family.add_metric([value], n)
        yield family


class Metrics:
    """The bot's metrics and their registry (one per Runtime: tests run many in one process).

    The poller, the notifier, the Slack sender and the backends' HTTP clients report through the methods
    below; `registry` is what GET /metrics serves.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.count_every = COUNT_EVERY
        r = self.registry = CollectorRegistry()
        self._watches = Gauge("jobstatus_watches_active",
                              "Active watches (a channel following a job), by backend.",
                              ["backend"], registry=r)
        self._jobs = _Read("jobstatus_jobs_tracked",
                           "Jobs the poller polls (one per job however many channels watch it), by backend.",
                           "backend")
        r.register(self._jobs)
        self._polls = Counter("jobstatus_polls",
                              "Polls of a job, by backend and outcome: changed, unchanged, "
                              "or the kind of error (bot/domain/errors.py).",
                              ["backend", "outcome"], registry=r)
        self._up = Gauge("jobstatus_backend_up",
                         "1 while the backend's last poll reached it, 0 while it is in "
                         "an outage (network, timeout, 5xx, rate limit, maintenance).",
                         ["backend"], registry=r)
        self._poll_series: dict[tuple[str, str], Counter] = {}
        self._up_series: dict[str, Gauge] = {}
        self._request_seconds = Histogram("jobstatus_vendor_request_duration_seconds",
                                          "Vendor HTTP requests answered (sign-ins included), "
                                          "from sending to the answer's headers, by backend.",
                                          ["backend"], buckets=REQUEST_BUCKETS, registry=r)
        self._slack_calls = Counter("jobstatus_slack_calls", "Slack Web API calls, by method and outcome "
                                    "(ok, or what Slack's refusal means: bot/slack/errors.py).",
                                    ["method", "outcome"], registry=r)
        self._rate_limited = Counter("jobstatus_slack_rate_limited",
                                     "Times Slack asked the bot to wait (Retry-After) "
                                     "before sending a message again (a 429 holds its method: "
                                     "a channel's posts, or another method's budget).", registry=r)
        self._slack_429 = Counter("jobstatus_slack_429",
                                  "Slack's 429 answers (its rate limit), by method: with "
                                  "the budget kept, none is expected.", ["method"], registry=r)
        self._budget_wait = Counter("jobstatus_slack_budget_wait_seconds",
                                    "Seconds Slack calls waited for their "
                                    "method's budget (bot/slack/budget.py), summed, by method.", ["method"],
                                    registry=r)
        self._unreachable = Counter("jobstatus_slack_unreachable",
                                    "Times Slack became unreachable (the network) "
                                    "for the notifier: one per outage, however many messages met it.",
                                    registry=r)
        self._unreachable_seconds = Counter("jobstatus_slack_unreachable_seconds",
                                            "Seconds Slack was unreachable, summed over ended outages.",
                                            registry=r)
        self._unreachable_waited = Counter("jobstatus_slack_unreachable_messages",
                                           "Messages that waited for Slack "
                                           "to be reachable again (each counted once per outage).",
                                           registry=r)
        self._unreachable_now = Gauge("jobstatus_slack_unreachable_now",
                                      "1 while the notifier cannot reach Slack, else 0.", registry=r)
        self._rate_limit_wait = Counter("jobstatus_slack_rate_limit_wait_seconds",
                                        "Seconds Slack asked the bot to wait (Retry-After), summed.",
                                        registry=r)
        self._outbox = Gauge("jobstatus_outbox_messages", "Messages owed to Slack (the outbox).", registry=r)
        self._oldest_owed: float | None = None
        self._outbox_age = Gauge("jobstatus_outbox_oldest_age_seconds", "Age of the oldest message owed to "
                                 "Slack (0 when none is owed).", registry=r)
        self._outbox_age.set_function(self._oldest_age)
        self._reply_seconds = Histogram("jobstatus_change_to_reply_seconds",
                                        "From the poll that saw a job's state change to Slack's answer "
                                        "to the thread reply saying so, by backend.",
                                        ["backend"], buckets=REPLY_BUCKETS, registry=r)
        self._lag = Histogram("jobstatus_loop_lag_seconds",
                              "How late a pass of a loop ran against when it was due: "
                              "the poller's polls against their due time, "
                              "the notifier's pass against its wake-up (a kick or its 1 s timer).",
                              ["loop"], buckets=LAG_BUCKETS, registry=r)
        self._api = Counter("jobstatus_api_requests",
                            "HTTP API requests (bot/inbound/api.py), by method, route (its "
                            "template) and the status answered.", ["method", "route", "status"], registry=r)
        self._replicas = Gauge("jobstatus_replicas_live",
                               "Replicas sharing the database, this one included, as "
                               "its last heartbeat saw them (1 on SQLite: one process).", registry=r)
        self._replicas.set(1)

    # -- the poller ---------------------------------------------------------------------------------------
    def jobs_tracked_from(self, read: Callable[[], Mapping[str, int]]) -> None:
        """Where `jobstatus_jobs_tracked` is read at each scrape: jobs by backend."""
        self._jobs.read = read

    def replicas_live(self, n: int) -> None:
        """Replicas on PostgreSQL: how many are alive, as this one's heartbeat saw
        (bot/engine/replicas.py)."""
        self._replicas.set(n)

    def poll(self, backend: str, error: BackendError | None, changed: bool = False) -> None:
        """One poll: an answer (`changed` or not) or an error (by its kind). An outage (Unavailable: the
        network, a timeout, 5xx, a rate limit, maintenance) puts the backend down; anything it answered puts
        it up."""
        outcome = error.kind if error is not None else "changed" if changed else "unchanged"
        # every poll comes here: each series' child is looked up once (prometheus_client's `labels()` takes a
        # lock and checks the names at each call, a good part of what the poll path spends on metrics)
        polls = self._poll_series.get((backend, outcome))
        if polls is None:
            polls = self._poll_series[(backend, outcome)] = self._polls.labels(backend, outcome)
        polls.inc()
        up = self._up_series.get(backend)
        if up is None:
            up = self._up_series[backend] = self._up.labels(backend)
        up.set(0 if isinstance(error, Unavailable) else 1)

    def loop_lag(self, loop: str, seconds: float) -> None:
        assert loop in LOOPS, loop
        self._lag.labels(loop).observe(max(0.0, seconds))

    # -- the backends' HTTP clients -----------------------------------------------------------------------
    def vendor_request(self, backend: str) -> Callable[[float], None]:
        """What a backend's HTTP client calls with each request's duration (bot/backends/http.py)."""
        return self._request_seconds.labels(backend).observe

    # -- Slack ------------------------------------------------------------------------------------------
    def slack_call(self, method: str, outcome: Outcome | None) -> None:
        """A Slack call: Slack took it (SENT), refused it (the refusal's outcome), or no table knows
        (None)."""
        name = "ok" if outcome is Outcome.SENT else outcome.name.lower() if outcome is not None else "unknown"
        self._slack_calls.labels(method if method in SLACK_METHODS else "other", name).inc()

    def slack_waits(self, seconds: float) -> None:
        """Slack asked to wait `seconds` before the next message to a channel."""
        self._rate_limited.inc()
        self._rate_limit_wait.inc(max(0.0, seconds))

    def slack_429(self, method: str) -> None:
        """Slack answered 429 (its rate limit) to `method`."""
        self._slack_429.labels(method if method in SLACK_METHODS else "other").inc()

    def budget_waited(self, method: str, seconds: float) -> None:
        """A call waited `seconds` for its method's budget before it went."""
        if seconds > 0:
            self._budget_wait.labels(method if method in SLACK_METHODS else "other").inc(seconds)

    def slack_unreachable(self) -> None:
        """Slack became unreachable (the first message that met it)."""
        self._unreachable.inc()
        self._unreachable_now.set(1)

    def slack_reachable(self, seconds: float, messages: int) -> None:
        """Slack is reachable again after `seconds`; `messages` waited meanwhile."""
        self._unreachable_now.set(0)
        self._unreachable_seconds.inc(max(0.0, seconds))
        self._unreachable_waited.inc(messages)

    def change_replied(self, backend: str, seconds: float) -> None:
        self._reply_seconds.labels(backend).observe(max(0.0, seconds))

    # -- the HTTP API -----------------------------------------------------------------------------------
    def api_request(self, method: str, route: str, status: int) -> None:
        """One API request answered; `route` is its template (`/api/v1/watches/{id}`), never a watch's id."""
        self._api.labels(method, route, str(status)).inc()

    # -- what the database knows ------------------------------------------------------------------------
    def counted(self, figures: store.Figures, backends: Iterable[str]) -> None:
        """Take a count: active watches of each configured backend (0 for one with none), the outbox."""
        for name in backends:
            self._watches.labels(name).set(figures.watches.get(name, 0))
        self._outbox.set(figures.outbox)
        self._oldest_owed = figures.oldest_owed

    def _oldest_age(self) -> float:
        return 0.0 if self._oldest_owed is None else max(0.0, self.clock() - self._oldest_owed)

    async def keep_counting(self, db: Store, backends: Mapping[str, object]) -> None:
        """Count what only the database knows, now and every `count_every` seconds, until cancelled."""
        while True:
            try:
                self.counted(await db.run(store.figures), backends)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("counting watches and the outbox for /metrics failed; counting again in %g s",
                              self.count_every)
            await asyncio.sleep(self.count_every)
