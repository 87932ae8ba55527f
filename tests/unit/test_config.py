"""The config file: ${ENV} expansion, durations, and errors that name the file, the backend and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.support.config import BackendConfig, ConfigError, Environment, load_settings

GOOD = """
backends:
  fusion-prod:
    type: fusion_jobscheduler
    base_url: https://fa-xxxx.oraclecloud.com/some/prefix/
    auth: {type: basic, username: svc.jobs, password: "${FUSION_PASSWORD}"}
    poll_interval: 1
  vault-qa:
    type: veeva_vault
    base_url: https://myvault.veevavault.com
    api_version: v26.1
    auth: {type: vault_session, username: u, password: "${VAULT_PASSWORD:-fallback}"}
    poll_interval: "2m"
  planning:
    type: epm_planning
    base_url: https://epm-xxxx.oraclecloud.com
    application: Vision
    api_version: v3
    auth: {type: basic, username: admin, password: p}
    poll_interval: "30s"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "jobstatus.yaml"
    p.write_text(text)
    return p


def test_reads_the_documented_example(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD), env={"FUSION_PASSWORD": "s3cret"})
    fusion = s.backends["fusion-prod"]
    assert fusion.auth.password == "s3cret"  # type: ignore[union-attr]
    assert fusion.base_url == "https://fa-xxxx.oraclecloud.com/some/prefix"
    assert fusion.poll_interval == 1.0
    assert s.backends["vault-qa"].poll_interval == 120.0
    assert s.backends["vault-qa"].auth.password == "fallback"  # type: ignore[union-attr]
    assert s.backends["planning"].poll_interval == 30.0
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("poll_interval: 1", "poll_interval: soon"), ["backend 'fusion-prod'", "field 'poll_interval'"]),
        (("type: veeva_vault", "type: vault"), ["backend 'vault-qa'", "field 'type'"]),
        (("base_url: https://myvault.veevavault.com", "base_url: myvault"),
         ["backend 'vault-qa'", "field 'base_url'"]),
        (("api_version: v3", "api_versoin: v3"), ["backend 'planning'", "field 'api_versoin'"]),
        (("{type: basic, username: admin, password: p}", "{type: basic, username: admin}"),
         ["backend 'planning'", "field 'auth.password'"]),
        (("api_version: v26.1", "api_version: v26.1\n    vault_client_id: my bot"),
         ["backend 'vault-qa'", "field 'vault_client_id'", "letters, digits"]),
        (("poll_interval: 1", "poll_interval: 1\n    vault_client_id: acme-fin-ops-server-jobs"),
         ["backend 'fusion-prod'", "field 'vault_client_id'", "only veeva_vault"]),
    ],
)
def test_errors_name_file_backend_and_field(tmp_path: Path, change: tuple[str, str], says: list[str]) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={"FUSION_PASSWORD": "s3cret"})
    text = str(err.value)
    assert str(path) in text
    for s in says:
        assert s in text


def test_missing_environment_variable_is_named_not_its_value(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert "FUSION_PASSWORD" in str(err.value) and "backends.fusion-prod.auth.password" in str(err.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "backends: [unclosed"), env={})
    with pytest.raises(ConfigError, match="backends"):
        load_settings(write(tmp_path, "backends: {}"), env={})


def test_environment_defaults() -> None:
    e = Environment.from_env({})
    assert e.slack_api_url == "https://slack.com/api/"
    assert (e.database_url == "sqlite:///./jobstatus.db" and e.port == 3000
            and e.config_path == "./jobstatus.yaml")
    assert (Environment.from_env({"SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url
            == "http://127.0.0.1:9/api/")


def test_the_example_config_in_the_repository_loads() -> None:
    env = {k: "x" for k in ("FUSION_PASSWORD", "VAULT_USER", "VAULT_PASSWORD", "EPM_PASSWORD",
                            "EPM_CLIENT_ID", "EPM_REFRESH_TOKEN", "IMMUTA_API_KEY")}
    env |= {"CI_FINANCE_TOKEN": "f" * 32, "NIGHTLY_LOADS_TOKEN": "n" * 32}
    s = load_settings(Path(__file__).resolve().parents[2] / "jobstatus.example.yaml", env=env)
    assert s.api is not None and s.api.tokens["ci-finance"].backends == ["fusion-prod", "planning"]
    assert {b.type for b in s.backends.values()} == {"fusion_jobscheduler", "veeva_vault",
                                                     "epm_data_integration", "epm_planning", "immuta"}
    assert s.watch_timeout == 86400 and s.outage_note_after == 300 and s.history_retention == 90 * 86400
    assert s.backends["vault-qa"].vault_client_id == "mycompany-vault-ops-server-jobstatus"


def test_digests_are_read_with_their_time_zone_and_an_unquoted_time(tmp_path: Path) -> None:
    text = GOOD + """
digests:
  - {channel: C0123ABCD, at: "07:30", timezone: Europe/Berlin}
  - {channel: C0456EFGH, at: 17:30}
"""
    s = load_settings(write(tmp_path, text), env={"FUSION_PASSWORD": "x"})
    assert [(d.channel, d.at, d.timezone) for d in s.digests] == [
        ("C0123ABCD", "07:30", "Europe/Berlin"), ("C0456EFGH", "17:30", "UTC")]  # YAML read 17:30 as 1050
    assert load_settings(write(tmp_path, GOOD), env={"FUSION_PASSWORD": "x"}).digests == []


@pytest.mark.parametrize(("entry", "words"), [
    ('{channel: "#ops", at: "07:30"}',
     "field 'digests.0.channel': Value error, '#ops' is not a Slack channel id"),
    ('{channel: C0123ABCD, at: "7.30"}', "'7.30' is not a time of day: use 24-hour \"HH:MM\""),
    ('{channel: C0123ABCD, at: "24:00"}', "'24:00' is not a time of day"),
    ('{channel: C0123ABCD, at: "07:30", timezone: Europe/Berlyn}',
     "unknown time zone 'Europe/Berlyn': use an IANA name"),
    ('{channel: C0123ABCD, at: "07:30", timezone: "../../etc/passwd"}',
     "unknown time zone '../../etc/passwd'"),
    ('{channel: C0123ABCD, at: "07:30", when: daily}',
     "field 'digests.0.when': Extra inputs are not permitted"),
    ('{channel: C0123ABCD}', "field 'digests.0.at': Field required"),
])
def test_a_bad_digest_is_a_config_error_that_says_what_to_write(
        tmp_path: Path, entry: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, GOOD + f"digests:\n  - {entry}\n"), env={"FUSION_PASSWORD": "x"})
    assert words in str(err.value)


def test_one_digest_per_channel(tmp_path: Path) -> None:
    text = GOOD + 'digests:\n  - {channel: C0123ABCD, at: "07:30"}\n  - {channel: C0123ABCD, at: "18:00"}\n'
    with pytest.raises(ConfigError, match="channel C0123ABCD has two digests"):
        load_settings(write(tmp_path, text), env={"FUSION_PASSWORD": "x"})


def test_a_backends_channels_rule_is_read_in_one_place() -> None:
    base = {"type": "fusion_jobscheduler", "base_url": "https://fa.test",
            "auth": {"type": "bearer", "token": "t"}}
    anywhere = BackendConfig.model_validate(base)
    only = BackendConfig.model_validate({**base, "channels": ["C1"]})
    assert anywhere.allows_channel("C9") and anywhere.allows_channel(None)
    assert only.allows_channel("C1") and only.allows_channel(None)  # None: not in a channel (the Home tab)
    assert not only.allows_channel("C2")
