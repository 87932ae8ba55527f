"""The `jobstatus-bot` command: run (serve Slack), demo (everything on loopback), check (backends)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot.config import ConfigError, Environment, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobstatus-bot", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO; WARNING for demo)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="serve Slack (HTTP on $PORT, or Socket Mode when SLACK_APP_TOKEN is set)")
    demo = sub.add_parser("demo", help="the whole bot offline: vendor simulators, a fake Slack, a terminal chat")
    demo.add_argument("--port", type=int, default=0, help="port for the bot's HTTP endpoint (default: any free)")
    sub.add_parser("check", help="log in to every configured backend and report what works")
    args = parser.parse_args(argv)
    level = args.log_level or ("WARNING" if args.cmd == "demo" else "INFO")
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every tick at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)  # and httpx every request: gigabytes a day at 10k watches
    try:
        if args.cmd == "run":
            return asyncio.run(_run())
        if args.cmd == "check":
            return asyncio.run(_check())
        return _demo(args.port)
    except ConfigError as exc:
        print(f"jobstatus-bot: config error:\n{exc}", file=sys.stderr)
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


async def _run() -> int:
    from bot.app import Runtime

    env = Environment.from_env()
    settings = load_settings(env.config_path)
    missing = [n for n, v in (("SLACK_BOT_TOKEN", env.slack_bot_token),
                              ("SLACK_SIGNING_SECRET", env.slack_signing_secret)) if not v]
    if missing and not env.slack_app_token:
        print(f"jobstatus-bot: set {' and '.join(missing)} (see README: Environment)", file=sys.stderr)
        return 2
    runtime = Runtime(settings, env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    await stop.wait()
    logging.getLogger("bot").info("shutting down")
    await runtime.stop()
    return 0


async def _check() -> int:
    from bot.backends import build_backends

    env = Environment.from_env()
    settings = load_settings(env.config_path)
    loop = asyncio.get_running_loop()
    db = None
    if any(b.auth.type == "oauth2_refresh" for b in settings.backends.values()):
        # EPM's refresh token works once: checking uses it up, so the check reads the newest one from the
        # database and stores the rotated one there, exactly as `run` does (else the bot's token is lost)
        from bot.store import Store

        db = Store(env.database_url)
        await loop.run_in_executor(None, db.create_schema)
    failed = 0
    try:
        for name, backend in build_backends(settings, env.config_path, secrets=db).items():
            cfg = settings.backends[name]
            try:
                rows = await backend.check()
            except Exception as exc:  # report, never crash, never print secrets
                rows = [("check", False, f"{type(exc).__name__}: {exc}")]
            finally:
                await backend.aclose()
            caps = backend.capabilities
            can_cancel = getattr(backend, "can_cancel", caps.cancel)
            print(f"{name} ({cfg.type}) — cancel: {'yes' if can_cancel else 'no'}, "
                  f"logs: {'yes' if caps.logs else 'no'}, batching: {'yes' if caps.batch else 'no'}")
            for what, ok, detail in rows:
                failed += not ok
                print(f"  [{'ok' if ok else 'FAIL'}] {what}: {detail}")
    finally:
        if db is not None:
            await loop.run_in_executor(None, db.close)
    return 1 if failed else 0
