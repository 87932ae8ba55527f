"""`jobstatus-bot check` as a real process against backends that cannot answer: a closed loopback port
(connection refused), a loopback server that accepts and never answers (timed out), a name that does not
resolve (`.invalid`, RFC 6761). All are checked at once, each says its own cause, the report is stdout and the
logs stderr, no secret is printed, and the exit code is 1."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import yaml

from tests.conftest import Silent
from tests.e2e.test_process import free_port

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ", re.M)


async def test_check_tells_refused_from_timed_out_from_not_resolved_all_at_once(
    tmp_path: Path, silent: Silent
) -> None:
    closed = free_port()
    backends = {
        "refused": {"type": "fusion_jobscheduler", "base_url": f"http://127.0.0.1:{closed}", "timeout": 5,
                    "auth": {"type": "basic", "username": "svc", "password": "s3cret-fusion"}},
        "refused-epm": {"type": "epm_data_integration", "base_url": f"http://127.0.0.1:{closed}/epm",
                        "timeout": 5, "auth": {"type": "basic", "username": "svc", "password": "s3cret-epm"}},
        "silent": {"type": "fusion_jobscheduler", "base_url": f"http://127.0.0.1:{silent.port}", "timeout": 2,
                   "auth": {"type": "bearer", "token": "s3cret-token"}},
        "silent-vault": {"type": "veeva_vault", "base_url": f"http://127.0.0.1:{silent.port}", "timeout": 2,
                         "auth": {"type": "vault_session", "username": "svc", "password": "s3cret-vault"}},
        "nowhere": {"type": "immuta", "base_url": "http://immuta.nonexistent.invalid", "timeout": 5,
                    "auth": {"type": "api_key", "key": "s3cret-key"}},
    }
    cfg = tmp_path / "jobstatus.yaml"
    cfg.write_text(yaml.safe_dump({"backends": backends}))
    env = dict(os.environ, JOBSTATUS_CONFIG=str(cfg), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 1, out + err

    lines = out.splitlines()
    # all started before any ended
    assert sorted(lines[:5]) == sorted(f"checking {name} …" for name in backends)
    fails = {line.strip() for line in lines if "[FAIL]" in line}
    assert f"[FAIL] reachable: http://127.0.0.1:{closed} is unreachable: connection refused" in fails
    assert "[FAIL] EPM API and credentials: refused-epm is unreachable: connection refused" in fails
    # a server that accepts and never answers: no whole answer within the backend's total deadline
    assert "[FAIL] reachable: silent answers too slowly: no complete answer within 2 s" in fails
    assert "[FAIL] reachable: silent-vault answers too slowly: no complete answer within 2 s" in fails
    assert "[FAIL] API key exchange: nowhere is unreachable: name not resolved" in fails
    assert len(fails) == 5 and "[ok]" not in out
    assert silent.most_at_once >= 2  # the two silent backends waited side by side, not one after the other

    assert not LOG_LINE.search(out), out  # the report alone on stdout...
    # ...the logs on stderr
    assert "backend 'nowhere': http://immuta.nonexistent.invalid is plain http://" in err
    assert "s3cret" not in out + err
