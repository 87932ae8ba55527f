"""The fake Slack's check of a view_submission's `response_action: errors` answer
(bot/offline/slack/views.py): Slack shows each error under the input block its key names, so a key that is no
input block shows nothing."""

from __future__ import annotations

from bot.offline.slack.views import errors_problem
from bot.rendering import views

MODAL = views.watch_modal(["epm-demo", "fusion-demo"])


def test_errors_on_the_modals_input_blocks_are_shown() -> None:
    answer = {"response_action": "errors",
              "errors": {views.JOB_ID: "Use digits.", views.CHANNEL: "Choose one."}}
    assert errors_problem(MODAL, answer) is None
    assert errors_problem(MODAL, {}) is None  # an empty ack closes the modal: nothing to check here
    assert errors_problem(MODAL, None) is None


def test_errors_slack_could_not_show_are_named() -> None:
    context_block = next(b for b in MODAL["blocks"] if b["type"] == "context")
    context_block = {**context_block, "block_id": "note"}
    modal = {**MODAL, "blocks": [*MODAL["blocks"][:-1], context_block]}
    cases = {
        "no errors object": {"response_action": "errors"},
        "empty errors": {"response_action": "errors", "errors": {}},
        "an action_id-like key of no block": {"response_action": "errors", "errors": {"job": "Use digits."}},
        "a block that is not an input": {"response_action": "errors", "errors": {"note": "Use digits."}},
        "an error that is no text": {"response_action": "errors", "errors": {views.JOB_ID: ["Use digits."]}},
        "an empty text": {"response_action": "errors", "errors": {views.JOB_ID: " "}},
    }
    for name, answer in cases.items():
        assert errors_problem(modal, answer) is not None, name
