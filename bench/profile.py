"""`--profile`: where the bot's CPU goes, sampled with py-spy (`pip install py-spy`) over a window.

py-spy reads the bot's memory from outside (`--nonblocking`: the bot is never paused) and writes
collapsed stacks (`--format raw`, one `frame;frame;... count` line per stack, aggregated by function).
The summary attributes each sample's leaf frame to a library (httpx, aiohttp, sqlalchemy, ...) and
counts, per function of the bot's own code, the samples it was on the stack for.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procs import child_env

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# leaf frame file -> library, first match wins
SNIFFIO = "httpcore's failed `import sniffio`, per lock/event (encode/httpcore#1103)"
LIBRARIES = (
    ("import machinery", ("<frozen importlib", "_distutils_hack/", "<frozen zipimport")),
    ("httpx", ("httpx/", "httpcore/", "h11/", "anyio/", "sniffio/", "certifi/")),
    (
        "aiohttp (vendor HTTP transport, Slack client, the bot's HTTP server)",
        ("aiohttp/", "multidict/", "yarl/", "aiosignal/", "frozenlist/"),
    ),
    ("slack_bolt / slack_sdk", ("slack_bolt/", "slack_sdk/")),
    ("sqlalchemy / sqlmodel / sqlite", ("sqlalchemy/", "sqlmodel/", "sqlite3/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("apscheduler", ("apscheduler/",)),
    ("json", ("json/",)),
    ("asyncio / selectors (event loop)", ("asyncio/", "selectors.py", "selector_events.py")),
    ("logging", ("logging/",)),
    ("bot (the bot's own code)", ("bot/",)),
    ("sockets / threads", ("socket.py", "threading.py", "concurrent/futures/", "ssl.py")),
)


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path) -> asyncio.subprocess.Process | None:
    exe = py_spy()
    if exe is None:
        return None
    with out.with_suffix(".err").open("ab") as err:
        return await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "100",
            "--format", "raw", "--function", "--nonblocking", "-o", str(out),
            env=child_env(), stdout=asyncio.subprocess.DEVNULL, stderr=err)


async def finish(proc: asyncio.subprocess.Process | None, out: Path, limit_s: float) -> dict[str, Any]:
    if proc is None:
        return {"error": "py-spy not found (pip install py-spy)"}
    try:
        await asyncio.wait_for(proc.wait(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    if not out.exists():
        err = out.with_suffix(".err")
        tail = err.read_text(errors="replace")[-300:] if err.exists() else ""
        return {"error": f"py-spy wrote nothing (exit {proc.returncode}): {tail}"}
    return summarise(out)


def _split(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


def _library(file: str) -> str:
    f = file.replace("\\", "/")
    for name, marks in LIBRARIES:
        if any(mark in f for mark in marks):
            if name.startswith("bot ") and "site-packages" in f:
                continue
            return name
    return "other"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    total = 0
    by_library: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_split(f) for f in stack.split(";") if f]
        if not frames:
            continue
        func, file = frames[-1]
        lib = _library(file)
        if lib == "import machinery" and any(fn == "current_async_library" for fn, _ in frames):
            lib = SNIFFIO
        by_library[lib] += n
        leaf[f"{func} ({_short(file)})"] += n
        for name in {f"{fn} ({_short(fl)})" for fn, fl in frames if _library(fl).startswith("bot ")}:
            inclusive[name] += n

    def share(c: Counter[str]) -> list[list[Any]]:
        return [[k, round(100 * v / total, 1)] for k, v in c.most_common(top)] if total else []

    return {"samples": total, "file": str(path), "self_by_library_pct": share(by_library),
            "self_by_function_pct": share(leaf), "bot_functions_inclusive_pct": share(inclusive)}


def _short(file: str) -> str:
    f = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", file.replace("\\", "/"))
    return re.sub(r"^.*/(?=bot/)", "", f)
