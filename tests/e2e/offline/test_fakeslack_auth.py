"""The fake Slack's auth.test answers with the fields Slack's method reference gives its output
(../shared/data/slack-method-reference/auth.test.json; https://docs.slack.dev/reference/methods/auth.test):
team_id always, enterprise_id on an Enterprise Grid organization. The bot's team check reads them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.offline.slack import DEFAULT_TOKEN, FakeSlack

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "slack-method-reference"


@pytest.fixture
async def grid() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(team_id="T0001", enterprise_id="E0001")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def answer(fs: FakeSlack) -> dict[str, Any]:
    return dict((await AsyncWebClient(token=DEFAULT_TOKEN, base_url=fs.api_url).auth_test()).data)


async def test_auth_test_names_the_team_and_on_grid_the_organization(
    slack: FakeSlack, grid: FakeSlack
) -> None:
    plain, on_grid = await answer(slack), await answer(grid)
    assert (
        plain["team_id"] == "T0001"
        and "enterprise_id" not in plain
        and plain["is_enterprise_install"] is False
    )
    assert on_grid["team_id"] == "T0001" and on_grid["enterprise_id"] == "E0001"


@pytest.mark.skipif(not REFERENCE.exists(), reason="Slack's method reference is not beside the repository")
async def test_auth_test_answers_only_fields_the_reference_gives(grid: FakeSlack) -> None:
    documented = set(
        json.loads((REFERENCE / "auth.test.json").read_text(encoding="utf-8"))["output"]["properties"]
    )
    assert set(await answer(grid)) - {"ok"} <= documented
