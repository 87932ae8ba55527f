"""What each adapter says of a job id it cannot take: once, with the vendor's name in words and the right
article, its own example, and the length limit when that is the rule broken."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.backends import build_backends
from bot.backends.base import Backend, with_article
from bot.domain.errors import InvalidJobId
from bot.support.config import settings_from_dict

BASIC = {"type": "basic", "username": "u", "password": "p"}


@pytest.fixture
def adapters() -> Iterator[dict[str, Backend]]:
    built = build_backends(settings_from_dict({"backends": {
        "fusion": {"type": "fusion_jobscheduler", "base_url": "https://fa.test", "auth": BASIC},
        "vault": {"type": "veeva_vault", "base_url": "https://v.test",
                  "auth": {"type": "vault_session", "username": "u", "password": "p"}},
        "di": {"type": "epm_data_integration", "base_url": "https://epm.test", "auth": BASIC},
        "planning": {"type": "epm_planning", "base_url": "https://epm.test", "auth": BASIC,
                     "application": "Vision"},
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
        ("fusion", "'12ab' is not an Oracle Fusion job id: it is the job request id the Job Scheduler API "
                   "returned, digits only, e.g. 44046"),
        ("vault", "'12ab' is not a Veeva Vault job id: it is the job_id Vault returned when the job started, "
                  "digits only, e.g. 1201"),
        ("di", "'12ab' is not an EPM Data Integration job id: it is the Data Integration process (job) id, "
               "digits only, e.g. 1881"),
        ("planning",
         "'12ab' is not an EPM Planning job id: it is the Planning job id, digits only, e.g. 224"),
        # Immuta's own example id (documentation.immuta.com/SaaS/developer-guides/api-intro/immuta-v1-api/
        # configure-your-instance-of-immuta/jobs): its schema takes only GUIDs
        ("immuta", "'12ab' is not an Immuta job id: it is the job's globally unique identifier, "
                   "e.g. cefb58a0-cd71-11ec-8e29-81c20d280994"),
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


@pytest.mark.parametrize("text", ["job-123", "12345", "a" * 65, "../../admin"])
def test_immuta_takes_only_a_guid_and_says_so_in_the_same_words(
        adapters: dict[str, Backend], text: str) -> None:
    """Immuta's schema refuses any job id but a GUID (a 400 for the whole batch): refused at the command, not
    sent. A GUID has one length, so there is no separate length rule to state."""
    shown = text[:40] + ("…" if len(text) > 40 else "")
    assert refusal(adapters["immuta"], text) == (f"'{shown}' is not an Immuta job id: it is the "
                                                 f"job's globally "
                                                 "unique identifier, e.g. "
                                                 "cefb58a0-cd71-11ec-8e29-81c20d280994")
    assert adapters["immuta"].validate_job_id("CEFB58A0-CD71-11EC-8E29-81C20D280994") == \
        "cefb58a0-cd71-11ec-8e29-81c20d280994"


def test_the_article_follows_the_name() -> None:
    assert [with_article(w) for w in ("Oracle Fusion", "Veeva Vault", "EPM Planning", "Immuta")] == [
        "an Oracle Fusion", "a Veeva Vault", "an EPM Planning", "an Immuta"]
