"""Block Kit as Slack checks it: what the fake Slack refuses in a `blocks` argument, and how to walk blocks.

`validate_blocks` is what chat.postMessage, chat.update, chat.postEphemeral and a response_url post run on
their `blocks`; `plain_text`, `block_buttons` and `iter_buttons` read blocks for the simulated user and the
text renderer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block


class BlocksRefused(Exception):
    """Slack refusing a `blocks` argument: `error` is the Web API error code, `extra` the rest of its
    answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def plain_text(obj: Any) -> str:
    """The text of a text object ({type, text}) or a string."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def block_buttons(block: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON pointer within the block, button) for the buttons of an actions block or a section accessory."""
    if not isinstance(block, dict):
        return
    if block.get("type") == "actions":
        for j, el in enumerate(block.get("elements") or []):
            if isinstance(el, dict) and el.get("type") == "button":
                yield f"/elements/{j}", el
    elif block.get("type") == "section":
        acc = block.get("accessory")
        if isinstance(acc, dict) and acc.get("type") == "button":
            yield "/accessory", acc


def iter_buttons(blocks: list[dict[str, Any]] | None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(block, button) for every button in actions blocks and section accessories, in reading order."""
    for block in blocks or []:
        for _, button in block_buttons(block):
            yield block, button


# Block Kit, as Slack checks it. Every `blocks` argument (chat.postMessage, chat.update, chat.postEphemeral,
# a response_url post) is parsed with slack_sdk's own models, whose validators know most limits (button
# text 75 and value 2000, confirm title 100 / text 300 / confirm and deny 30, section text 3000, header
# 150, 10 fields, 25 actions elements, 10 context elements, block_id 255, ...). What they let through and
# Slack refuses is checked here, each rule with its source:
# - at most 50 blocks in a message: https://docs.slack.dev/reference/block-kit/blocks ("up to 50 blocks
#   in each message");
# - a text object's text has "minimum length is 1 and maximum length is 3000 characters", and its type is
#   plain_text or mrkdwn: https://docs.slack.dev/reference/block-kit/composition-objects/text-object
#   (so a context element's text, which slack_sdk does not measure, stops at 3,000 too; and Slack refuses
#   empty texts: slackapi/bolt-js#793, an empty mrkdwn section and an empty button text → invalid_blocks);
# - a section field's text is at most 2,000: https://docs.slack.dev/reference/block-kit/blocks/section-block
# - plain_text only: a button's text ("Can only be of type: plain_text",
#   https://docs.slack.dev/reference/block-kit/block-elements/button-element), a header's text
#   (https://docs.slack.dev/reference/block-kit/blocks/header-block), and a confirmation dialog's title,
#   confirm and deny (https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object).
#   That page now says plain_text for the dialog's `text` as well, where it used to say "a text object"
#   (mrkdwn allowed); what Slack does with a mrkdwn dialog text is not documented either way, so the fake
#   accepts both there;
# - action_ids are unique within a block ("Should be unique among all other action_ids in the containing
#   block", the button element reference) and block_ids within a message ("block_id should be unique for
#   each message", every block's reference);
# - an actions block's `elements` is "Required" and may not be empty: the reference gives no minimum, but
#   "Block Kit components do not allow an empty array for a property value" (slackapi/python-slack-sdk,
#   slack_sdk/models/basic_objects.py, beside EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST);
# - a block type slack_sdk does not know is refused (Slack's list of blocks is the reference above; the
#   exact words of Slack's refusal are not documented).
# The refusal has Slack's shape: `errors` (one "<why> [json-pointer:<where>]" each) and the same again as
# response_metadata.messages with "[ERROR] " before each, as real answers show
# (slackapi/python-slack-sdk#1521: 'errors': ['invalid slack file
# [json-pointer:/blocks/2/slack_file.id/slack_file]'], 'response_metadata': {'messages': ['[ERROR] invalid
# slack file [json-pointer:/blocks/2/slack_file.id/slack_file]']}).
MAX_BLOCKS = 50
TEXT_TYPES = ("plain_text", "mrkdwn")
TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000


def validate_blocks(blocks: Any, max_blocks: int = MAX_BLOCKS) -> list[dict[str, Any]] | None:
    """`blocks` if Slack would take it; BlocksRefused("invalid_blocks", errors=...) listing every problem,
    or "invalid_blocks_format" when it is not an array at all. `max_blocks`: 50 in a message, 100 in a view
    (bot/offline/slack/views.py)."""
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        raise BlocksRefused("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    block_ids: set[Any] = set()
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{pointer}]")
            continue
        bid = block.get("block_id")
        if bid is not None:
            if bid in block_ids:
                errors.append(f"duplicate block_id {bid!r} [json-pointer:{pointer}/block_id]")
            block_ids.add(bid)
        sdk_error = _sdk_block_error(block)
        if sdk_error is not None:
            errors.append(f"{sdk_error} [json-pointer:{pointer}]")
        errors.extend(f"{why} [json-pointer:{pointer}{where}]" for where, why in _block_limits(block))
    if errors:
        raise BlocksRefused("invalid_blocks", errors=errors,
                            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    return blocks


def _sdk_block_error(block: dict[str, Any]) -> str | None:
    """What slack_sdk's models say is wrong with `block` (None: nothing)."""
    try:
        parsed = Block.parse(block)
        if parsed is None:  # a type slack_sdk does not know (it logs and skips it)
            return f"unsupported block type {block['type']!r}"
        parsed.to_dict()  # runs the validators of the block and of everything in it
    except SlackObjectFormationError as exc:
        return str(exc)
    # a required field missing, a list where an object belongs...: the models cannot build it
    except Exception:
        return "failed to match all allowed schemas"
    return None


def _text_objects(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, text object) for every plain_text / mrkdwn object anywhere in `node`."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _text_objects(item, f"{pointer}/{i}")
    elif isinstance(node, dict):
        if node.get("type") in TEXT_TYPES:
            yield pointer, node
            return
        for key, value in node.items():
            yield from _text_objects(value, f"{pointer}/{key}")


def _block_limits(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(pointer within the block, why) for what slack_sdk lets through and Slack refuses (sources above)."""
    for where, obj in _text_objects(block):
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            yield f"{where}/text", "must be more than 0 characters"
        elif len(text) > TEXT_MAX:
            yield f"{where}/text", f"must be less than {TEXT_MAX + 1} characters"
    kind = block["type"]
    texts: list[tuple[str, Any]] = []  # where a text object (and nothing else) belongs
    plain_only: list[tuple[str, Any]] = []
    if kind == "section":
        if "text" in block:
            texts.append(("/text", block["text"]))
        for j, f in enumerate(block.get("fields") or []):
            texts.append((f"/fields/{j}", f))
            if isinstance(f, dict) and isinstance(f.get("text"), str) and len(f["text"]) > FIELD_TEXT_MAX:
                yield f"/fields/{j}/text", f"must be less than {FIELD_TEXT_MAX + 1} characters"
    elif kind == "header":
        plain_only.append(("/text", block.get("text")))
    elif kind == "context":
        texts.extend((f"/elements/{j}", el) for j, el in enumerate(block.get("elements") or [])
                     if not (isinstance(el, dict) and el.get("type") == "image"))
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements:
            yield "/elements", "must provide at least 1 item"
        ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
        if len(ids) != len(set(ids)):
            yield "/elements", "action_id already exists in this block"
    for where, button in block_buttons(block):
        plain_only.append((f"{where}/text", button.get("text")))
        dialog = button.get("confirm")
        if isinstance(dialog, dict):
            plain_only.extend(
                (f"{where}/confirm/{key}", dialog.get(key)) for key in ("title", "confirm", "deny")
            )
    for where, obj in texts:
        if not (isinstance(obj, dict) and obj.get("type") in TEXT_TYPES):
            yield where, "failed to match all allowed schemas"
    for where, obj in plain_only:
        if not (isinstance(obj, dict) and obj.get("type") == "plain_text"):
            yield f"{where}/type", "must be plain_text"
