"""The HTTP API's pure parts (bot/api.py): the token check, the `api:` config, a POST body's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import messages
from bot.api import STATUS, ApiError, Client, Tokens, parse_watch
from bot.config import ApiConfig, ConfigError, load_settings

FIN = "fin-0123456789abcdef0123456789abcdef"
HR = "hr-0123456789abcdef0123456789abcdef0"

CONFIG = """
backends:
  fusion-prod:
    type: fusion_jobscheduler
    base_url: https://fa.example.com
    auth: {type: basic, username: u, password: p}
api:
  tokens:
    ci-finance: {token: "${CI_TOKEN}", backends: [fusion-prod], channels: [C0123ABCD]}
    ci-hr: {token: "${HR_TOKEN}"}
"""


def tokens() -> Tokens:
    return Tokens(ApiConfig.model_validate({"tokens": {"ci-finance": {"token": FIN, "channels": ["C1"]},
                                                       "ci-hr": {"token": HR}}}))


def test_the_bearer_token_names_its_client_and_anything_else_is_nobody() -> None:
    t = tokens()
    assert t.caller(f"Bearer {FIN}") == Client("ci-finance", None, frozenset({"C1"}))
    assert t.caller(f"bearer  {HR} ") is not None and t.caller(f"bearer {HR}").name == "ci-hr"  # type: ignore[union-attr]
    for header in (None, "", "Bearer", "Bearer ", FIN, f"Basic {FIN}", f"Bearer {FIN}x", f"Bearer {FIN[:-1]}",
                   f"Bearer {FIN.upper()}", "Bearer \udcff"):
        assert t.caller(header) is None, header


def test_a_client_may_use_what_its_token_lists() -> None:
    c = Client("ci-finance", frozenset({"fusion-prod"}), frozenset({"C1"}))
    assert c.may_use("fusion-prod", "C1") is None
    assert c.may_use("vault-qa", "C1") == ("API token `ci-finance` may not use backend `vault-qa` (its `backends` "
                                          "setting allows: `fusion-prod`).")
    assert c.may_use("fusion-prod", "C2") == ("API token `ci-finance` may not watch in <#C2> (its `channels` "
                                             "setting allows: <#C1>).")
    assert Client("any", None, None).may_use("x", "C9") is None


def test_api_tokens_come_from_the_environment_and_stay_out_of_repr(tmp_path: Path) -> None:
    p = tmp_path / "jobstatus.yaml"
    p.write_text(CONFIG)
    s = load_settings(p, env={"CI_TOKEN": FIN, "HR_TOKEN": HR})
    assert s.api is not None and s.api.tokens["ci-finance"].token == FIN
    assert s.api.tokens["ci-finance"].channels == ["C0123ABCD"] and s.api.tokens["ci-hr"].backends is None
    assert FIN not in repr(s) and HR not in repr(s)
    no_api = tmp_path / "none.yaml"
    no_api.write_text(CONFIG.split("api:")[0])
    assert load_settings(no_api, env={}).api is None


@pytest.mark.parametrize(("env", "says"), [
    ({"CI_TOKEN": FIN}, "environment variable HR_TOKEN is not set"),
    ({"CI_TOKEN": FIN, "HR_TOKEN": ""}, "field 'api.tokens.ci-hr.token'"),
    ({"CI_TOKEN": FIN, "HR_TOKEN": "short-secret"}, "at least 24 characters"),
    ({"CI_TOKEN": FIN, "HR_TOKEN": FIN}, "tokens 'ci-finance' and 'ci-hr' are the same"),
    ({"CI_TOKEN": FIN, "HR_TOKEN": f" {HR}"}, "without surrounding spaces"),
])
def test_empty_short_and_duplicate_tokens_are_config_errors_that_do_not_show_them(
        tmp_path: Path, env: dict[str, str], says: str) -> None:
    p = tmp_path / "jobstatus.yaml"
    p.write_text(CONFIG)
    with pytest.raises(ConfigError) as err:
        load_settings(p, env=env)
    assert says in str(err.value)
    for value in env.values():
        assert not value.strip() or value.strip() not in str(err.value)


@pytest.mark.parametrize(("change", "says"), [
    (("backends: [fusion-prod]", "backends: [fusion-qa]"), "field 'api': Value error, token 'ci-finance': backends ['fusion-qa'] are not"),
    (("ci-hr:", "ci hr:"), "token name 'ci hr'"),
    (("    ci-finance: {token", "    ci-finance: {tokn"), "field 'api.tokens.ci-finance.tokn'"),
])
def test_api_config_mistakes_name_the_field(tmp_path: Path, change: tuple[str, str], says: str) -> None:
    p = tmp_path / "jobstatus.yaml"
    p.write_text(CONFIG.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_settings(p, env={"CI_TOKEN": FIN, "HR_TOKEN": HR})
    assert says in str(err.value)
    assert FIN not in str(err.value) and HR not in str(err.value)


def test_a_watch_request_is_checked_field_by_field() -> None:
    ok = parse_watch(b'{"backend": " fusion-prod ", "job_id": 44046, "channel": "C0123ABCD", "user": "U01"}')
    assert (ok.backend, ok.job_id, ok.channel, ok.user) == ("fusion-prod", "44046", "C0123ABCD", "U01")
    assert parse_watch(b'{"backend": "b", "job_id": "x", "channel": "G012"}').user is None
    for raw, says in [
        (b"", "not JSON"), (b"\xff", "not JSON"), (b'"text"', "not a JSON object"),
        (b'{"backend": "b", "job_id": true, "channel": "C012"}', "'job_id' is missing or not a string"),
        (b'{"backend": "", "job_id": "1", "channel": "C012"}', "'backend' is missing"),
        (b'{"backend": "b", "job_id": "1", "channel": "C012", "user": 5}', "'user' is missing or not a string"),
        (b'{"backend": "b", "job_id": "1", "channel": "general"}', "not a channel id"),
        (b'{"backend": "b", "job_id": "1", "channel": "D012"}', "not a channel id"),  # no watches in DMs
        (b'{"backend": "b", "job_id": "1", "channel": "C012", "user": "<!channel>"}', "not a Slack user id"),
        (b'{"backend": "b", "job_id": "1", "channel": "C012", "<b>": 1}', "Unknown field '&lt;b&gt;'"),
        (b'{"backend": "' + b"b" * 65 + b'", "job_id": "1", "channel": "C012"}', "'backend' is too long"),
        (b" " * 5000, "too long"),
    ]:
        with pytest.raises(ApiError) as err:
            parse_watch(raw)
        assert err.value.code == "malformed" and err.value.status == 400 and says in err.value.message, raw


def test_every_refusal_code_has_a_status_and_unknown_ones_are_400() -> None:
    from bot import watching

    assert ApiError("job_not_found", "").status == 404 and ApiError("nonsense", "").status == 400
    assert {"unknown_backend", "channel_not_allowed", "invalid_job_id", "job_not_found", "backend_unavailable",
            "backend_error", "cannot_post", "slack_refused"} <= STATUS.keys()
    assert watching.UserError("x").code == "refused"


def test_who_names_a_user_by_mention_and_an_api_client_by_name() -> None:
    assert messages.who("U0123") == "<@U0123>"
    assert messages.who(messages.api_actor("ci-finance")) == "`ci-finance` (API)"
