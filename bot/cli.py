"""The `jobstatus-bot` command: run (serve Slack), demo (everything on loopback), check (backends), migrate
(upgrade the database's schema and nothing else)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import time

from bot.store.engine import InUse
from bot.store.schema import SchemaError
from bot.support import logs
from bot.support.config import ConfigError, Environment, environment_help, load_settings

# SIGTERM or SIGINT ends `run` within this many seconds, whatever is under way (bot/app.py's STOP_BUDGET is
# the orderly part). Past it the process exits at once: a database call stuck in a thread cannot be cancelled.
EXIT_WITHIN = 4.8
MIN_BUDGET = 1.0  # the orderly stop's least share when the signal was taken late


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobstatus-bot", description=__doc__)
    parser.add_argument("--log-level", default=None,
                        help="DEBUG, INFO, WARNING (default INFO; WARNING for demo and check)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="serve Slack (HTTP on $PORT, or Socket Mode when SLACK_APP_TOKEN is set)",
                   description="Serve Slack: HTTP on $PORT (POST /slack/events), or Socket Mode when "
                               "SLACK_APP_TOKEN is set; GET /healthz (liveness) and /readyz (readiness) "
                               "either way. SIGTERM or SIGINT stops it within 5 s.",
                   epilog=environment_help("run"), formatter_class=argparse.RawDescriptionHelpFormatter)
    demo = sub.add_parser("demo",
                          help="the whole bot offline: vendor simulators, a fake Slack, a terminal chat")
    demo.add_argument("--port", type=int, default=0,
                      help="port for the bot's HTTP endpoint (default: any free)")
    sub.add_parser("check", help="log in to every configured backend and report what works",
                   description="Check every configured backend at once: reachable, credentials, what it "
                               "supports. The report is on stdout, logs on stderr; exit 1 if any check "
                               "fails, 2 for a config error.",
                   epilog=environment_help("check"), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_parser("migrate",
                   help="upgrade the database to this version's schema, then exit (`run` does it too)",
                   description="Upgrade the database at DATABASE_URL to this version's schema and print the "
                               "revision found and the one left; `run` does the same at start. Exit 2 for a "
                               "database a newer jobstatus upgraded (nothing is changed).",
                   epilog=environment_help("migrate"), formatter_class=argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args(argv)
    # LOG_FORMAT, LOG_LEVEL; always on stderr, so `check`'s report on stdout never mixes with log lines
    logs.configure(args.log_level, "INFO" if args.cmd in ("run", "migrate") else "WARNING")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO
    # and httpx every request: gigabytes a day at 10k watches
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # its set-up chatter; bot.store.schema says what changed
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.cmd == "run":
            return asyncio.run(_run())
        if args.cmd == "check":
            return asyncio.run(_check())
        if args.cmd == "migrate":
            return _migrate()
        return _demo(args.port)
    except ConfigError as exc:
        print(f"jobstatus-bot: config error:\n{exc}", file=sys.stderr)
        return 2
    except (SchemaError, InUse) as exc:  # a database a newer jobstatus upgraded, or SQLite served already
        print(f"jobstatus-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _demo(port: int) -> int:
    """The demo runs on the stand-ins (bot/offline/), which no product module imports: only this function
    does, when asked; the Docker image leaves them out."""
    try:
        from bot.offline.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[:2] != ["bot", "offline"]:
            raise
        message = "the demo is not in this installation (the Docker image leaves bot/offline/ out)"
        print(f"jobstatus-bot: {message}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(port=port))


def _migrate() -> int:
    """Upgrade the database's schema and exit: for operators who migrate before rolling out a new version."""
    from bot.store import Store

    env = Environment.from_env()
    db = Store(env.database_url)
    try:
        done = db.upgrade()
    finally:
        db.close()
    where = db.engine.url.render_as_string(hide_password=True)
    print(f"jobstatus-bot: database {where}: schema {done}")
    return 0


async def _run() -> int:
    from bot.app import STOP_BUDGET, Runtime

    env = Environment.from_env()
    settings = load_settings(env.config_path)
    missing = [n for n, v in (("SLACK_BOT_TOKEN", env.slack_bot_token),
                              ("SLACK_SIGNING_SECRET", env.slack_signing_secret)) if not v]
    if missing and not env.slack_app_token:
        print(f"jobstatus-bot: set {' and '.join(missing)} (see docs/configuration.md: Environment)",
              file=sys.stderr)
        return 2
    runtime = Runtime(settings, env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    arrived: list[float] = []  # when the first signal arrived (time.monotonic())
    signalled = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        # A plain signal handler, not loop.add_signal_handler: Python runs it between two bytecodes of the
        # main thread, so the stop's clock starts when the signal arrives even while the event loop is busy (a
        # saturated poller took SIGTERM ~1.5 s late when the loop's own handler waited for its turn). It only
        # notes the time and wakes the watchdog thread, which asks the loop to stop: whatever the main thread
        # was doing is interrupted by nothing that takes a lock or touches the loop.
        if not arrived:
            arrived.append(time.monotonic())
            signalled.set()

    def watchdog() -> None:
        signalled.wait()
        loop.call_soon_threadsafe(stop.set)
        _exit_after(arrived[0] + EXIT_WITHIN)

    threading.Thread(target=watchdog, daemon=True, name="exit-watchdog").start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    # a signal during the start (a slow database, say) stops it too
    starting = asyncio.create_task(runtime.start())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
    try:
        await starting
    except asyncio.CancelledError:
        pass
    except BaseException:
        stopped.cancel()
        await runtime.stop()
        raise
    await stopped
    late = time.monotonic() - arrived[0]
    logging.getLogger("bot").info("shutting down (%.2f s after the signal)", late)
    await runtime.stop(budget=max(STOP_BUDGET - late, MIN_BUDGET))
    logging.getLogger("bot").info("stopped %.2f s after the signal", time.monotonic() - arrived[0])
    return 0


def _exit_after(deadline: float) -> None:
    """The backstop of a stop: at `deadline` (time.monotonic()), exit however far the orderly stop got."""
    time.sleep(max(0.0, deadline - time.monotonic()))
    logging.getLogger("bot").error("still stopping %g s after the signal "
                                   "(a database call that does not return?); "
                                   "exiting now, whatever is owed stays in the database", EXIT_WITHIN)
    logging.shutdown()
    os._exit(1)


async def _check() -> int:
    """Every backend checked at the same time (one that cannot be reached costs its timeout once, not once
    per backend); "checking X …" as each starts, its rows as each ends; exit 1 if any row failed."""
    from bot.backends import build_backends
    from bot.domain.errors import BackendError
    from bot.support.network import cause, is_network

    env = Environment.from_env()
    settings = load_settings(env.config_path)
    loop = asyncio.get_running_loop()
    db = None
    if any(b.auth.type == "oauth2_refresh" for b in settings.backends.values()):
        # EPM's refresh token works once: checking uses it up, so the check reads the newest one from the
        # database and stores the rotated one there, exactly as `run` does (else the bot's token is lost)
        from bot.store import Store
        from bot.store.sealing import missing_key

        db = Store(env.database_url, env.secret_keys)
        if not db.sealer.ready:  # as `run`: the rotated token is never stored unencrypted
            db.close()
            rotating = sorted(n for n, b in settings.backends.items() if b.auth.type == "oauth2_refresh")
            raise missing_key(
                f"backend {', '.join(rotating)} keeps its rotating refresh token in the database"
            )
        await loop.run_in_executor(None, db.upgrade)
        # SecretKeyError for a key that opens no stored secret
        await loop.run_in_executor(None, db.seal_secrets)
    try:
        backends = build_backends(settings, env.config_path, secrets=db)

        async def one(name: str) -> int:
            backend = backends[name]
            print(f"checking {name} …", flush=True)
            try:
                rows = await backend.check()
            except BackendError as exc:  # its text is safe to show (bot/domain/errors.py)
                rows = [("check", False, str(exc))]
            except Exception as exc:  # report, never crash, never print secrets: the cause or the class only
                rows = [("check", False, f"{name}: {cause(exc) if is_network(exc) else type(exc).__name__}")]
            finally:
                await backend.aclose()
            caps = backend.capabilities
            can_cancel = getattr(backend, "can_cancel", caps.cancel)
            lines = [f"{name} ({settings.backends[name].type}) — cancel: {'yes' if can_cancel else 'no'}, "
                     f"logs: {'yes' if caps.logs else 'no'}, batching: {'yes' if caps.batch else 'no'}"]
            lines += [f"  [{'ok' if ok else 'FAIL'}] {what}: {detail}" for what, ok, detail in rows]
            print("\n".join(lines), flush=True)
            return sum(not ok for _what, ok, _detail in rows)

        failed = sum(await asyncio.gather(*(one(name) for name in backends)))
    finally:
        if db is not None:
            await loop.run_in_executor(None, db.close)
    return 1 if failed else 0
