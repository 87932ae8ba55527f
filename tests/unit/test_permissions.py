"""bot/operations/permissions.py: the decision table (who × action × backend rule × channel), where details
may go, the config's rules and the status limit. The Slack lookups (user groups, channel members) are
tests/e2e/test_permissions.py's."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.errors import Forbidden
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.operations.permissions import (
    STATUS_BURST,
    STATUS_PER_MINUTE,
    Action,
    StatusLimit,
    Who,
    decide,
)
from bot.operations.refusals import UserError
from bot.rendering.messages import details_line
from bot.store import Store
from bot.support.config import BackendConfig, ConfigError, settings_from_dict
from tests.conftest import FakeClock
from tests.unit.doubles import CONFIG, watching

ADMINS = ["UADMIN"]
OWNER = "UOWNER"


def cfg(**rules: Any) -> BackendConfig:
    return BackendConfig.model_validate({**CONFIG, "details": [], **rules})


OPEN = cfg()  # today's defaults: everyone, anywhere, cancel: owner
LOCKED = cfg(users=["U1", "SOPS"], channels=["C1"], cancel=["SOPS"])
ANYONE = cfg(cancel="anyone")
LISTED = cfg(cancel=["U2"])

# (who, their groups, action, backend rule, channel) -> allowed?
TABLE = [
    # everyone may use an open backend anywhere; a cancel is the owner's, or an admin's
    ("U9", (), Action.WATCH, OPEN, "C7", True),
    ("U9", (), Action.STATUS, OPEN, "C7", True),
    ("U9", (), Action.REFRESH, OPEN, "C7", True),
    ("U9", (), Action.UNWATCH, OPEN, "C7", True),
    ("U9", (), Action.CANCEL, OPEN, "C7", False),  # a watcher of their own channel is not the owner
    (OWNER, (), Action.CANCEL, OPEN, "C7", True),
    ("UADMIN", (), Action.CANCEL, OPEN, "C7", True),
    ("U9", (), Action.CANCEL, ANYONE, "C7", True),
    ("U2", (), Action.CANCEL, LISTED, "C7", True),
    (OWNER, (), Action.CANCEL, LISTED, "C7", False),  # a list replaces the owner rule
    # a locked-down backend: named people and groups, one channel
    ("U1", (), Action.WATCH, LOCKED, "C1", True),
    ("U9", ("SOPS",), Action.WATCH, LOCKED, "C1", True),  # through the user group
    ("U9", (), Action.WATCH, LOCKED, "C1", False),  # not listed
    ("U9", (), Action.STATUS, LOCKED, "C1", False),
    ("U9", (), Action.REFRESH, LOCKED, "C1", False),
    ("U9", (), Action.UNWATCH, LOCKED, "C1", False),
    ("U1", (), Action.WATCH, LOCKED, "C2", False),  # listed, but not in its channel
    ("U1", (), Action.REFRESH, LOCKED, "C2", False),  # a click on an old message in a channel taken out
    ("U1", (), Action.CANCEL, LOCKED, "C1", False),  # may use it, may not cancel: not in the group
    ("U9", ("SOPS",), Action.CANCEL, LOCKED, "C1", True),
    (OWNER, (), Action.CANCEL, LOCKED, "C1", False),  # owning gives no right under a list, nor use
    # admins may always cancel where they may use the backend
    ("UADMIN", (), Action.CANCEL, OPEN, "C1", True),
    ("UADMIN", (), Action.CANCEL, LISTED, "C1", True),
    ("UADMIN", (), Action.CANCEL, LOCKED, "C1", False),  # `admins` widens cancel, not who may use it
    ("UADMIN", ("SOPS",), Action.CANCEL, LOCKED, "C2", False),  # nor where
    ("U1", (), Action.WATCH, LOCKED, None, True),  # not in a channel (the Home tab): users only
    ("U9", (), Action.UNWATCH, LOCKED, None, False),
]


@pytest.mark.parametrize(("user", "groups", "action", "rule", "channel", "allowed"), TABLE)
def test_the_decision_table(user: str, groups: tuple[str, ...], action: Action, rule: BackendConfig,
                            channel: str | None, allowed: bool) -> None:
    why = decide(rule, "fin", ADMINS, Who(user, frozenset(groups)), action, channel, owner=OWNER)
    assert (why is None) is allowed, why


def test_each_refusal_says_why_and_what_to_do() -> None:
    def why(user: str, action: Action, rule: BackendConfig, channel: str,
            owner: str | None = OWNER) -> str | None:
        return decide(rule, "fin", ADMINS, Who(user), action, channel, owner=owner)

    assert why("U9", Action.WATCH, LOCKED, "C1") == ("You may not use backend `fin`: its `users` setting "
                                                     "names the people and user groups who may. Ask the "
                                                     "bot's operator to add you.")
    assert why("U1", Action.WATCH, LOCKED, "C2") == ("Backend `fin` may not be used in this channel (its "
                                                     "`channels` setting allows: <#C1>).")
    assert why("U1", Action.CANCEL, LOCKED, "C1") == ("Only the people and user groups in `fin`'s `cancel` "
                                                      "setting (or an admin) may cancel its jobs.")
    assert why("U9", Action.CANCEL, OPEN, "C1") == ("Only <@UOWNER>, who first watched it (the `cancel: "
                                                    "owner` rule of `fin`), or an admin may cancel this job.")
    assert why("U9", Action.CANCEL, OPEN, "C1", None) == (
        "Nobody watches this job yet, so it has no owner: under the `cancel: owner` rule of `fin` it is "
        "cancelled by the person who first watches it, or by an admin.")


@pytest.mark.parametrize(("details", "channel", "line"), [
    ("anywhere", "C7", None),
    (["C1"], "C1", None),
    (["C1", "C2"], "C7", "Details are posted in <#C1>, <#C2>."),
    ([], "C1", "Details (failure text, logs, output links) are not posted in Slack for this backend."),
])
def test_details_go_only_to_the_details_channels(details: Any, channel: str, line: str | None) -> None:
    assert details_line(cfg(details=details), channel) == line


def test_the_defaults_are_everyone_anywhere_owner_and_no_details_in_slack() -> None:
    b = BackendConfig.model_validate({k: v for k, v in CONFIG.items() if k != "details"})
    assert (b.users, b.channels, b.cancel, b.details) == (None, None, "owner", [])
    assert details_line(b, "C1") is not None


@pytest.mark.parametrize(("rules", "says"), [
    ({"cancel": "watcher"}, "`watcher` is no longer a cancel rule"),
    ({"users": ["@ana"]}, "'@ana' is not a Slack user id (U…/W…) or user group id (S…)"),
    ({"cancel": ["ana"]}, "'ana' is not a Slack user id"),
    ({"details": ["#general"]}, "'#general' is not a Slack channel id"),
    ({"channels": ["general"]}, "'general' is not a Slack channel id"),
    ({"details": None}, "leave `details` out"),
])
def test_a_rule_that_cannot_be_used_is_a_config_error_naming_backend_and_field(rules: dict[str, Any],
                                                                               says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_from_dict({"backends": {"qa": {**CONFIG, **rules}}}, "jobstatus.yaml")
    field = next(iter(rules))
    assert f"jobstatus.yaml: backend 'qa': field '{field}'" in str(exc.value) and says in str(exc.value)


def test_status_is_a_token_bucket_per_person() -> None:
    now = [0.0]
    limit = StatusLimit(lambda: now[0])
    assert [limit.take("U1") for _ in range(STATUS_BURST)] == [0.0] * STATUS_BURST
    wait = limit.take("U1")
    assert wait == pytest.approx(60.0 / STATUS_PER_MINUTE)  # the next token
    assert limit.take("U2") == 0.0  # another person has their own
    now[0] += 60.0 / STATUS_PER_MINUTE
    assert limit.take("U1") == 0.0 and limit.take("U1") > 0


async def test_an_id_the_bot_may_not_see_answers_exactly_like_one_that_does_not_exist(
        db: Store, clock: FakeClock) -> None:
    w, _slack, backend = watching(db, clock)
    backend.jobs["4401"] = Forbidden("fake does not allow this account to see that (HTTP 403)")
    answers = []
    for job_id in ("4401", "4402"):  # forbidden at the vendor; unknown to it
        with pytest.raises(UserError) as refused:
            await w.status(backend, job_id, "U1", "C1")
        answers.append((str(refused.value).replace(job_id, "<id>"), refused.value.code))
    assert answers[0] == answers[1] == ("fake has no job `<id>`. Check the id (and that it is a "
                                        "Double job id).",
                                        "job_not_found")


async def test_status_outside_the_details_channels_shows_the_state_only(db: Store, clock: FakeClock) -> None:
    w, _slack, backend = watching(db, clock)
    w.settings = settings_from_dict({"backends": {"fake": {**CONFIG, "details": ["C1"]}}})
    backend.jobs["77"] = JobStatus("77", Phase.FAILED, "ERROR", message="ORA-600 in payroll row 17",
                                   log_paths=("/logs/77.log",))
    backend.config = w.settings.backends["fake"]
    here = await w.status(backend, "77", "U1", "C1")
    elsewhere = await w.status(backend, "77", "U1", "C2")
    assert "ORA-600" in str(here.blocks) and "/logs/77.log" in str(here.blocks)
    assert "ORA-600" not in str(elsewhere.blocks) and "/logs/77.log" not in str(elsewhere.blocks)
    assert "Details are posted in <#C1>." in str(elsewhere.blocks) and "failed" in str(elsewhere.blocks)
