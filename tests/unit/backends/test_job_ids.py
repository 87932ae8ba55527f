"""What each adapter says of a job id it cannot take: once, with the vendor's name in words and the right
article, its own example, and the length limit when that is the rule broken."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.backends import build_backends
from bot.backends.base import Backend, with_article
from bot.backends.errors import InvalidJobId
from bot.config import settings_from_dict

BASIC = {"type": "basic", "username": "u", "password": "p"}


@pytest.fixture
def adapters() -> Iterator[dict[str, Backend]]:
    built = build_backends(settings_from_dict({"backends": {
        "fusion": {"type": "fusion_jobscheduler", "base_url": "https://fa.test", "auth": BASIC},
        "vault": {"type": "veeva_vault", "base_url": "https://v.test",
                  "auth": {"type": "vault_session", "username": "u", "password": "p"}},
        "di": {"type": "epm_data_integration", "base_url": "https://epm.test", "auth": BASIC},
        "planning": {"type": "epm_planning", "base_url": "https://epm.test", "auth": BASIC, "application": "Vision"},
        "immuta": {"type": "immuta", "base_url": "https://i.test", "auth": {"type": "api_key", "key": "k"}},
    }}, "<test>"), "<test>")
    yield built


def refusal(backend: Backend, text: str) -> str:
    with pytest.raises(InvalidJobId) as refused:
        backend.validate_job_id(text)
    return str(refused.value)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("fusion", "'12ab' is not an Oracle Fusion job id: it is the job request id the Job Scheduler API returned, "
                   "digits only, e.g. 44046"),
        ("vault", "'12ab' is not a Veeva Vault job id: it is the job_id Vault returned when the job started, "
                  "digits only, e.g. 1201"),
        ("di", "'12ab' is not an EPM Data Integration job id: it is the Data Integration process (job) id, "
               "digits only, e.g. 1881"),
        ("planning", "'12ab' is not an EPM Planning job id: it is the Planning job id, digits only, e.g. 224"),
    ],
)
def test_a_malformed_id_is_refused_once_with_the_vendors_own_example(
        adapters: dict[str, Backend], name: str, says: str) -> None:
    said = refusal(adapters[name], "12ab")
    assert said == says and said.count("is not") == 1


@pytest.mark.parametrize("name", ["fusion", "vault", "di", "planning"])
def test_a_numeric_id_too_long_is_refused_for_its_length(adapters: dict[str, Backend], name: str) -> None:
    said = refusal(adapters[name], "1" * 19)
    assert said.endswith("job id: 19 digits, at most 18") and "too long" in said and "digits only" not in said
    assert adapters[name].validate_job_id("9" * 18) == "9" * 18


def test_immuta_says_its_length_limit_too(adapters: dict[str, Backend]) -> None:
    said = refusal(adapters["immuta"], "a" * 65)
    assert said.startswith("'" + "a" * 40 + "…' is too long for an Immuta job id: 65 characters, at most 64")
    assert refusal(adapters["immuta"], "../../admin").startswith("'../../admin' is not an Immuta job id: it is")


def test_the_article_follows_the_name() -> None:
    assert [with_article(w) for w in ("Oracle Fusion", "Veeva Vault", "EPM Planning", "Immuta")] == [
        "an Oracle Fusion", "a Veeva Vault", "an EPM Planning", "an Immuta"]
