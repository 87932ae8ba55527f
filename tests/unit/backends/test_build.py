"""Building the configured backends: a plain http:// address of a real vendor is said once at start (its
credentials would cross the network unencrypted); this machine's own addresses are exempt."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.backends import build_backends
from bot.support.config import settings_from_dict


def fusion(base_url: str, **auth: Any) -> dict[str, Any]:
    return {"type": "fusion_jobscheduler", "base_url": base_url,
            "auth": auth or {"type": "basic", "username": "u", "password": "s3cret-pw"}}


async def built(backends: dict[str, Any], caplog: pytest.LogCaptureFixture) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="bot.backends"):
        for b in build_backends(settings_from_dict({"backends": backends}), "<test>").values():
            await b.aclose()
    return [r.getMessage() for r in caplog.records if "http://" in r.getMessage()]


async def test_a_real_vendor_over_plain_http_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    said = await built({
        "clear": fusion("http://fa-xxxx.oraclecloud.com"),
        "tls": fusion("https://fa-yyyy.oraclecloud.com"),
        "token-in-clear": fusion("https://fa-zzzz.oraclecloud.com", type="oauth2", client_id="c",
                                 client_secret="s", token_url="http://idcs.example.com/oauth2/v1/token"),
    }, caplog)
    assert len(said) == 2
    assert "backend 'clear'" in said[0] and "http://fa-xxxx.oraclecloud.com is plain http://" in said[0]
    assert "backend 'token-in-clear'" in said[1] and "http://idcs.example.com/oauth2/v1/token" in said[1]
    assert "unencrypted" in said[0] and not any("s3cret-pw" in line for line in said)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://127.1.2.3", "http://localhost:9000/prefix",
                                 "http://[::1]:8080"])
async def test_this_machine_is_exempt(url: str, caplog: pytest.LogCaptureFixture) -> None:
    assert await built({"local": fusion(url)}, caplog) == []
