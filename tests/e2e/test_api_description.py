"""End to end, the HTTP API's OpenAPI description (bot/inbound/api.py, `GET /api/v1/openapi.json`): served
without a token by the real Runtime, and what the API really answers fits it (the docs' API page is rendered
from it)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import jsonschema
import pytest

from bot.inbound import api
from bot.offline.vendors.core import Step
from tests.conftest import Harness

TOKEN = "ci-finance-0123456789abcdef0123456789"


async def call(h: Harness, method: str, path: str, body: Any = None, token: str | None = TOKEN
               ) -> tuple[int, Any, dict[str, str]]:
    url = h.runtime.events_url.replace("/slack/events", path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None), dict(r.headers)


def checker(spec: dict[str, Any], schema: str) -> jsonschema.Validator:
    """A validator of one of the description's schemas (OpenAPI 3.1's schemas are JSON Schema 2020-12)."""
    return jsonschema.Draft202012Validator({**spec["components"]["schemas"][schema],
                                            "components": spec["components"]})


@pytest.mark.settings(api={"tokens": {"ci-finance": {"token": TOKEN}}})
async def test_the_description_is_served_without_a_token_and_the_answers_fit_it(harness: Harness) -> None:
    h = harness
    status, spec, headers = await call(h, "GET", api.OPENAPI, token=None)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert spec == json.loads(json.dumps(api.openapi()))
    assert spec["openapi"].startswith("3.")

    h.sim.fusion.add_job(801, steps=[Step(0, "RUNNING")])
    status, watch, _ = await call(h, "POST", api.WATCHES, {"backend": "fusion-demo", "job_id": "801",
                                                           "channel": "C0001"})
    assert status == 201 and "201" in spec["paths"][api.WATCHES]["post"]["responses"]
    checker(spec, "Watch").validate(watch)
    status, again, _ = await call(h, "GET", api.WATCH.replace("{id}", str(watch["id"])))
    assert status == 200
    checker(spec, "Watch").validate(again)

    # refusals: each status and code the description lists for that operation, the body its Error schema
    for method, path, body, token in [
        ("post", api.WATCHES, {"backend": "fusion-demo"}, TOKEN),  # malformed
        # unknown_backend
        ("post", api.WATCHES, {"backend": "nope", "job_id": "1", "channel": "C0001"}, TOKEN),
        ("get", api.WATCH.replace("{id}", "999999"), None, TOKEN),  # not_found
        ("delete", api.WATCH.replace("{id}", "1"), None, "wrong-token-0123456789abcdef"),  # unauthorized
    ]:
        status, refusal, _ = await call(h, method.upper(), path, body, token)
        checker(spec, "Error").validate(refusal)
        template = api.WATCHES if path == api.WATCHES else api.WATCH
        listed = spec["paths"][template][method]["responses"][str(status)]["x-error-codes"]
        assert refusal["error"] in listed, (method, path, refusal)


async def test_without_api_in_the_config_there_is_no_description_either(harness: Harness) -> None:
    async with aiohttp.ClientSession() as session, \
            session.get(harness.runtime.events_url.replace("/slack/events", api.OPENAPI)) as resp:
        assert resp.status == 404
