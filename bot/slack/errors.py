"""Slack's error codes for every call the bot makes, each classified once: what the bot does when Slack says
it.

Where the codes come from: each Web API method's reference page on docs.slack.dev
(https://docs.slack.dev/reference/methods/<method>/, its "Errors" table), read in the machine-readable copy
that slack-ruby/slack-api-ref scrapes from those pages: `docs.slack.dev/methods/<method>.json` holds a
method's own errors, `methods/_errors/common.json` the errors every method page lists. Three codes every
page lists are missing from that common file and are taken from the pages themselves (and slack_kit's
scrape, priv/docs/common_errors.json): `invalid_auth`, `invalid_arguments`, `internal_error`.
The response_url codes come from Slack's changelog "Improving error conditions for Incoming Webhooks"
(https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks); see RESPONSE_URL.

A code Slack sends that is in no table here is unknown (`classify` says None): the notifier retries it with
backoff a bounded number of times, then drops the message with an ERROR log line (see
bot/engine/notifier/outcome.py).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class Outcome(enum.Enum):
    """What a call to Slack came to: sent, or what Slack's refusal means for the message."""

    SENT = "sent"  # Slack took it
    RETRY = "retry"  # transient: send it again later, after Retry-After when Slack gives one
    DROP = "drop"  # Slack will never take this message (our rendering, a feature we do not use): drop it only
    REPOST_PARENT = "repost parent"  # the parent is gone or cannot be edited: post a new one, keep the thread
    END_WATCH = "end watch"  # the channel or thread takes nothing more from the bot: end the watch
    # the token or the workspace refuses the bot: hold everything, probe auth.test
    STOP_SENDING = "stop sending"
    # a file upload refused: it costs the upload only (a note with the log path instead)
    NO_UPLOAD = "no upload"


R, D, P, E, S, U = (Outcome.RETRY, Outcome.DROP, Outcome.REPOST_PARENT, Outcome.END_WATCH,
                    Outcome.STOP_SENDING, Outcome.NO_UPLOAD)

# Every method page's common errors (slack-api-ref methods/_errors/common.json, plus the three named above).
GENERIC: dict[str, Outcome] = {
    # the token, the app or the workspace refuses every call: nothing can go out until an admin fixes it
    "invalid_auth": S, "not_authed": S, "account_inactive": S, "token_revoked": S, "token_expired": S,
    "not_allowed_token_type": S, "is_bot": S, "two_factor_setup_required": S, "enterprise_is_restricted": S,
    "accesslimited": S,  # "limited on the current network": the bot's IP is not allowed
    "missing_scope": S,  # chat:write gone means no message can go; files.* override it (an upload only)
    # the channel (or what the message points at) refuses the bot
    "access_denied": E, "no_permission": E,  # "make sure your app is a member of the conversation"
    "ekm_access_denied": E,  # chat.postMessage: "admins have disabled sending messages to this channel"
    # transient on Slack's side ("it's possible some aspect of the operation succeeded": a reply may repeat)
    "ratelimited": R, "request_timeout": R, "service_unavailable": R, "fatal_error": R, "internal_error": R,
    "team_added_to_org": R, "org_login_required": R,  # an enterprise migration: "until ... complete"
    # our request is malformed or uses an endpoint Slack retired: sending it again cannot help
    "invalid_arguments": D, "invalid_arg_name": D, "invalid_array_arg": D, "invalid_charset": D,
    "invalid_form_data": D, "invalid_post_type": D, "missing_post_type": D, "deprecated_endpoint": D,
    "method_deprecated": D, "unknown_method": D,
}

# Each method's own errors: docs.slack.dev/reference/methods/<method>/ (slack-api-ref
# docs.slack.dev/methods/).
METHODS: dict[str, dict[str, Outcome]] = {
    # https://docs.slack.dev/reference/methods/chat.postMessage/
    "chat.postMessage": {
        "channel_not_found": E, "is_archived": E, "not_in_channel": E, "restricted_action": E,
        "restricted_action_read_only_channel": E, "restricted_action_thread_only_channel": E,
        "restricted_action_non_threadable_channel": E, "restricted_action_thread_locked": E,
        "messages_tab_disabled": E, "app_access_restricted": E, "team_not_found": E,
        "cannot_reply_to_message": P,  # "this message type cannot have thread replies": a new parent can
        "rate_limited": R, "message_limit_exceeded": R,  # posting too much: later
        "no_text": D, "invalid_blocks": D, "invalid_blocks_format": D, "msg_blocks_too_long": D,
        "invalid_metadata_format": D, "invalid_metadata_schema": D, "metadata_too_large": D,
        "metadata_must_be_sent_from_app": D, "markdown_text_conflict": D, "too_many_attachments": D,
        "too_many_contact_cards": D, "attachment_payload_limit_exceeded": D, "missing_file_data": D,
        "slack_connect_canvas_sharing_blocked": D, "slack_connect_file_link_sharing_blocked": D,
        "slack_connect_lists_sharing_blocked": D,
        # arguments the bot never sends (as_user, drafts, client_msg_id, sending on behalf)
        "as_user_not_supported": D, "draft_already_deleted": D,
        "draft_already_sent": D, "draft_has_conflict": D,
        "draft_not_found": D, "duplicate_channel_not_found": D, "duplicate_message_not_found": D,
        "send_on_behalf_not_allowed": D,
    },
    # https://docs.slack.dev/reference/methods/chat.update/
    "chat.update": {
        "channel_not_found": E, "is_inactive": E,  # "a frozen, archived or deleted channel"
        "posting_to_channel_denied": E, "team_not_found": E,
        "message_not_found": P, "cant_update_message": P,
        "external_channel_migrating": R, "update_failed": R, "message_limit_exceeded": R,
        # the parent stays as it is but the thread goes on: a parent per edit would break "one parent"
        "edit_window_closed": D, "streaming_state_conflict": D,
        "no_text": D, "msg_too_long": D, "invalid_blocks": D, "invalid_blocks_format": D, "block_mismatch": D,
        "invalid_attachments": D, "too_many_attachments": D, "invalid_metadata_format": D,
        "invalid_metadata_schema": D, "metadata_too_large": D, "metadata_must_be_sent_from_app": D,
        "markdown_text_conflict": D, "as_user_not_supported": D, "cant_broadcast_message": D,
        "no_dual_broadcast_content_update": D,
        # file shares in an edit: the bot edits no files into its parent
        "blocked_file_type": D, "file_deleted": D, "file_is_deleted": D, "file_not_found": D,
        "file_share_limit_reached": D, "max_file_sharing_exceeded": D, "unable_to_share_files": D,
        "slack_connect_blocked_file_type": D, "slack_connect_canvas_sharing_blocked": D,
        "slack_connect_clip_sharing_blocked": D, "slack_connect_file_link_sharing_blocked": D,
        "slack_connect_file_upload_sharing_blocked": D,
    },
    # https://docs.slack.dev/reference/methods/chat.postEphemeral/ (not called today; classified for the
    # listeners that will)
    "chat.postEphemeral": {
        "channel_not_found": E, "is_archived": E, "not_in_channel": E, "restricted_action": E,
        "messages_tab_disabled": E, "user_not_in_channel": D, "cannot_reply_to_message": D,
        "message_limit_exceeded": R,
        "no_text": D, "msg_too_long": D,
        "invalid_blocks": D, "invalid_blocks_format": D, "invalid_attachments": D,
        "too_many_attachments": D, "markdown_text_conflict": D,
    },
    # https://docs.slack.dev/reference/methods/chat.getPermalink/ (no link: the answer says "its thread in
    # this channel")
    "chat.getPermalink": {"channel_not_found": D, "message_not_found": D},
    # https://docs.slack.dev/reference/methods/conversations.history/ (the check for a parent posted before a
    # crash: cannot look, so post)
    "conversations.history": {
        "channel_not_found": D, "not_in_channel": D, "channel_is_limited_access": D, "invalid_cursor": D,
        "invalid_metadata_filter_keys": D, "invalid_ts_latest": D, "invalid_ts_oldest": D,
    },
    # Uploads: whatever refuses a file costs only that file (see classify), so most codes here are NO_UPLOAD.
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal/
    "files.getUploadURLExternal": {
        "file_uploads_disabled": U, "file_uploads_except_images_disabled": U, "file_type_not_allowed": U,
        "file_upload_size_restricted": U, "storage_limit_reached": U,
        "snippet_too_large": U, "missing_argument": U,
        "alt_txt_too_large": U, "unknown_snippet_type": U, "unknown_subtype": U,
        # files:write only
        "missing_scope": U, "no_permission": U, "access_denied": U, "ekm_access_denied": U,
    },
    # https://docs.slack.dev/reference/methods/files.completeUploadExternal/
    "files.completeUploadExternal": {
        # "User/bot membership is required for the specified channel": chat:write.public posts, it cannot
        # upload
        "not_in_channel": U, "channel_not_found": U, "invalid_channel": U, "posting_to_channel_denied": U,
        "file_not_found": U, "file_type_not_allowed": U, "file_uploads_except_images_disabled": U,
        "file_update_failed": U, "channels_limit_exceeded": U, "invalid_blocks": U,
        "missing_scope": U, "no_permission": U, "access_denied": U, "ekm_access_denied": U,
    },
    # https://docs.slack.dev/reference/methods/auth.test/ (the stop-sending probe: its own errors,
    # invalid_auth and internal_error, are generic)
    "auth.test": {},
}

# files_upload_v2 calls both; the upload in between (to the URL the first hands out) has no error code:
# slack_sdk raises SlackRequestError for it, which the notifier treats as an unknown error.
UPLOAD_METHODS = ("files.getUploadURLExternal", "files.completeUploadExternal")

# response_url posts (Bolt's respond()) answer with an HTTP status and a plain-text code, as incoming webhooks
# do (the changelog above). Not confirmed by any Slack page: the codes for a response_url used more than five
# times or after 30 minutes (the fake Slack says used_url / expired_url); an unlisted code is classified by
# its HTTP status (see classify_http).
RESPONSE_URL: dict[str, Outcome] = {
    "invalid_payload": D, "user_not_found": D, "action_prohibited": D, "channel_not_found": D,
    "channel_is_archived": D, "no_text": D, "invalid_blocks": D, "too_many_attachments": D,
    "expired_url": D, "used_url": D,
    "rollup_error": R, "ratelimited": R, "internal_error": R, "service_unavailable": R,
}


def classify(method: str, error: str) -> Outcome | None:
    """What to do when `method` answers `error`; None when no table knows the code (the caller's default).

    An upload can only cost the upload: a code that would drop a message, repost a parent or end a watch
    is NO_UPLOAD there (token trouble still stops sending, and transient trouble is still retried)."""
    if method == "response_url":
        return RESPONSE_URL.get(error)
    outcome = METHODS.get(method, {}).get(error) or GENERIC.get(error)
    if outcome is not None and method in UPLOAD_METHODS and outcome in (Outcome.DROP, Outcome.REPOST_PARENT,
                                                                         Outcome.END_WATCH):
        return Outcome.NO_UPLOAD
    return outcome


def classify_http(status: int, body: str) -> Outcome:
    """A response_url answer: its code when the table knows it, else by status (429 and 5xx are transient)."""
    known = RESPONSE_URL.get(body.strip())
    if known is not None:
        return known
    return Outcome.RETRY if status == 429 or status >= 500 else Outcome.DROP


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Retry-After header. slack_sdk's async client hands over aiohttp's case-insensitive
    multidict (values are strings); its sync client a dict of lists: both are read here."""
    if not headers:
        return None
    for key in headers.keys():
        if str(key).lower() != "retry-after":
            continue
        value = headers[key]
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        try:
            seconds = float(str(value).strip())
        except (TypeError, ValueError):
            return None  # an HTTP-date form: Slack sends seconds; the caller's backoff applies
        return seconds if seconds >= 0 else None
    return None
