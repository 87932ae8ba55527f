"""The HTTP API's pure parts (bot/inbound/api.py): the token check, the `api:` config, a POST body's
checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import actors
from bot.inbound.api import (
    FAILURE_WINDOW,
    FAILURES_FREE,
    FIRST_PAUSE,
    MAX_ADDRESSES,
    MAX_PAUSE,
    STATUS,
    ApiError,
    Client,
    Throttle,
    Tokens,
    parse_watch,
)
from bot.rendering import messages
from bot.support.config import ApiConfig, ConfigError, load_settings

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
    assert c.may_use("vault-qa", "C1") == ("API token `ci-finance` may not use backend `vault-qa` (its "
                                          "`backends` setting allows: `fusion-prod`).")
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
    (("backends: [fusion-prod]", "backends: [fusion-qa]"),
     "field 'api': Value error, token 'ci-finance': backends ['fusion-qa'] are not"),
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
        (b'{"backend": "b", "job_id": "1", "channel": "C012", "user": 5}',
         "'user' is missing or not a string"),
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
    from bot.operations import refusals

    assert ApiError("job_not_found", "").status == 404 and ApiError("nonsense", "").status == 400
    assert {"unknown_backend", "channel_not_allowed", "invalid_job_id", "job_not_found",
            "backend_unavailable", "backend_error", "cannot_post", "slack_refused"} <= STATUS.keys()
    assert refusals.UserError("x").code == "refused"


def test_who_names_a_user_by_mention_and_an_api_client_by_name() -> None:
    assert messages.who("U0123") == "<@U0123>"
    assert messages.who(actors.api_actor("ci-finance")) == "`ci-finance` (API)"
    # a watch's watcher: the token, and the user it mentions (never the other way round)
    assert messages.who(actors.watcher(actors.api_actor("ci"), "U0ANA")) == "`ci` (API) for <@U0ANA>"
    assert messages.who(actors.watcher("U0123", None)) == "<@U0123>"


# -- issue 19 item 4: the named user, the scope's refusals, the 401 throttle ---------------------------------

def test_a_client_names_only_its_own_users_and_says_how_to_do_without() -> None:
    config = ApiConfig.model_validate({"tokens": {"ci": {"token": FIN, "users": ["U0ANA", "W0BEN"]},
                                                  "hr": {"token": HR}}})
    ci, hr = Tokens(config).caller(f"Bearer {FIN}"), Tokens(config).caller(f"Bearer {HR}")
    assert ci is not None and hr is not None
    assert ci.may_name("U0ANA") is None and ci.may_name("W0BEN") is None
    assert ci.may_name("U0EVE") == ("API token `ci` may not name `U0EVE` as the watch's `user` (its `users` "
                                    "setting lists: `U0ANA`, `W0BEN`). Leave `user` out (the thread then "
                                    "names the token), or ask the bot's operator to add the user.")
    assert "lists nobody" in (hr.may_name("U0ANA") or "")  # the default: nobody
    with pytest.raises(ValueError, match="'ana' is not a Slack user id"):
        ApiConfig.model_validate({"tokens": {"ci": {"token": FIN, "users": ["ana"]}}})


def test_a_scoped_client_resolves_only_its_own_backends_and_refuses_others_alike() -> None:
    c = Client("hr", frozenset({"planning-prod", "EPM-x"}), None)
    assert c.backend_name("planning-prod") == "planning-prod"
    assert c.backend_name("PLANNING-PROD") == "planning-prod" and c.backend_name("epm-X") == "EPM-x"
    words = []
    for name in ("fusion-prod", "no-such-backend"):  # configured elsewhere, or not at all: the same refusal
        with pytest.raises(ApiError) as refused:
            c.backend_name(name)
        assert refused.value.code == "token_not_allowed"
        words.append(refused.value.message.replace(name, "<name>"))
    assert words[0] == words[1] == ("API token `hr` may not use backend `<name>` (its `backends` setting "
                                    "allows: `EPM-x`, `planning-prod`).")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_throttle_lets_a_few_failures_through_then_doubles_a_capped_pause(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    t = Throttle(clock)
    for _ in range(FAILURES_FREE):
        assert t.retry_after("10.0.0.1") is None
        t.failed("10.0.0.1")
    assert t.retry_after("10.0.0.1") is None and caplog.records == []
    t.failed("10.0.0.1")  # one past the free ones: paused
    assert t.retry_after("10.0.0.1") == FIRST_PAUSE and t.retry_after("10.0.0.2") is None
    pauses = []
    for _ in range(12):  # each failure once the pause is over doubles it, up to MAX_PAUSE
        clock.now += t.retry_after("10.0.0.1") or 0
        assert t.retry_after("10.0.0.1") is None
        t.failed("10.0.0.1")
        pauses.append(t.retry_after("10.0.0.1"))
    assert pauses[:4] == [2 * FIRST_PAUSE, 4 * FIRST_PAUSE, 8 * FIRST_PAUSE, 16 * FIRST_PAUSE]
    assert max(p or 0 for p in pauses) == MAX_PAUSE == pauses[-1]
    assert len(caplog.records) == 1 and "10.0.0.1" in caplog.records[0].getMessage()  # one line per burst
    clock.now += MAX_PAUSE + FAILURE_WINDOW + 2  # quiet: the closing line, and the address forgotten
    assert t.retry_after("10.0.0.3") is None
    assert [r.getMessage() for r in caplog.records][1].startswith(
        f"API: the invalid tokens from 10.0.0.1 stopped: {FAILURES_FREE + 13} failed and 25 answered 429")
    assert "10.0.0.1" not in t._by_address
    for _ in range(FAILURES_FREE):  # a fresh budget after the quiet
        t.failed("10.0.0.1")
    assert t.retry_after("10.0.0.1") is None


async def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    t = Throttle(Clock())
    for i in range(MAX_ADDRESSES + 50):
        t.failed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(t._by_address) == MAX_ADDRESSES
    assert "10.0.0.0" not in t._by_address and "10.0.0.49" not in t._by_address  # the oldest went first
