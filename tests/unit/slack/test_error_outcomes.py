"""Every Slack error code the bot can meet, pinned to what the bot does about it (bot/slack/errors.py).

Each method row quotes that code's description from the method's reference page, read in the copy in
../shared/data/slack-method-reference/<method>.json (Slack's pages docs.slack.dev/reference/methods/<method>/
in machine-readable form, see SOURCE.md there); a test checks each quote against that copy, so a row cannot
cite words Slack does not say. Why each description leads to its outcome (errors.py's Outcome):
- END_WATCH: the channel, or the thread, takes nothing more from the bot (invalid, archived, not a member,
  a workspace or admin rule against posting there): every later message of the watch would fail the same way.
- REPOST_PARENT: the parent message is gone or may not be edited/replied to: a new parent can carry the watch.
- RETRY: Slack's side is busy or failing for now (too many messages, internal failure, a migration).
- DROP: this one request is wrong (our blocks, text, metadata, arguments the bot never sends) or the lookup
  it served (permalink, history) cannot be done: sending the same again cannot help, the watch goes on.
- NO_UPLOAD: any refusal of a file upload costs only the upload (the thread gets a note instead).
- STOP_SENDING: the token is refused: nothing can go out until an admin fixes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from bot.slack.errors import GENERIC, METHODS, RESPONSE_URL, Outcome, classify, classify_http, retry_after

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "slack-method-reference"
END_WATCH, REPOST_PARENT, RETRY, DROP, NO_UPLOAD, STOP_SENDING = (
    Outcome.END_WATCH, Outcome.REPOST_PARENT, Outcome.RETRY, Outcome.DROP, Outcome.NO_UPLOAD,
    Outcome.STOP_SENDING)

# (method, code, outcome, the code's description on the method's page)
ROWS = [
    # https://docs.slack.dev/reference/methods/chat.postMessage/
    ("chat.postMessage", "app_access_restricted", END_WATCH,
     "The user does not have permission to use this app."),
    ("chat.postMessage", "as_user_not_supported", DROP,
     "The `as_user` parameter does not function with workspace apps."),
    ("chat.postMessage", "channel_not_found", END_WATCH, "Value passed for `channel` was invalid."),
    ("chat.postMessage", "draft_already_deleted", DROP, "The draft has already been deleted."),
    ("chat.postMessage", "draft_already_sent", DROP, "The draft has already been sent."),
    ("chat.postMessage", "draft_has_conflict", DROP,
     "The client draft version is out of sync with the server draft version."),
    ("chat.postMessage", "draft_not_found", DROP, "The draft was not found."),
    ("chat.postMessage", "duplicate_channel_not_found", DROP,
     "Channel associated with `client_msg_id` was invalid."),
    ("chat.postMessage", "duplicate_message_not_found", DROP,
     "No duplicate message exists associated with `client_msg_id`."),
    ("chat.postMessage", "ekm_access_denied", END_WATCH,
     "Your message couldn’t be sent because your admins have disabled sending messages to this channel."),
    ("chat.postMessage", "invalid_blocks", DROP, "Blocks submitted with this message are not valid."),
    ("chat.postMessage", "invalid_blocks_format", DROP,
     "The `blocks` is not a valid JSON object or doesn't match the Block Kit syntax."),
    ("chat.postMessage", "invalid_metadata_format", DROP, "Invalid metadata format provided."),
    ("chat.postMessage", "invalid_metadata_schema", DROP, "Invalid metadata schema provided."),
    ("chat.postMessage", "is_archived", END_WATCH, "Channel has been archived."),
    ("chat.postMessage", "markdown_text_conflict", DROP,
     "Markdown text cannot be used in conjunction with `blocks` or `text` argument."),
    ("chat.postMessage", "message_limit_exceeded", RETRY,
     "Members on this team are sending too many messages. For more details, see "
     "https://slack.com/help/articles/115002422943-Usage-limits-for-free-workspaces."),
    ("chat.postMessage", "messages_tab_disabled", END_WATCH, "Messages tab for the app is disabled."),
    ("chat.postMessage", "metadata_must_be_sent_from_app", DROP,
     "Message metadata can only be posted or updated using an app-level token."),
    ("chat.postMessage", "metadata_too_large", DROP, "Metadata exceeds size limit."),
    ("chat.postMessage", "msg_blocks_too_long", DROP, "Blocks submitted with this message are too long."),
    ("chat.postMessage", "no_text", DROP, "No message text provided."),
    ("chat.postMessage", "not_in_channel", END_WATCH,
     "Cannot post user messages to a channel they are not in."),
    ("chat.postMessage", "rate_limited", RETRY,
     "Application has posted too many messages, [read the Rate Limit "
     "documentation](/apis/web-api/rate-limits) for more information."),
    ("chat.postMessage", "restricted_action", END_WATCH,
     "A workspace preference prevents the authenticated user from posting."),
    ("chat.postMessage", "restricted_action_non_threadable_channel", END_WATCH,
     "Cannot post thread replies into a non_threadable channel."),
    ("chat.postMessage", "restricted_action_read_only_channel", END_WATCH,
     "Cannot post any message into a read-only channel."),
    ("chat.postMessage", "restricted_action_thread_locked", END_WATCH,
     "Cannot post replies to a thread that has been locked by admins."),
    ("chat.postMessage", "restricted_action_thread_only_channel", END_WATCH,
     "Cannot post top-level messages into a thread-only channel."),
    ("chat.postMessage", "send_on_behalf_not_allowed", DROP, "Cannot send on behalf of the provided user."),
    ("chat.postMessage", "slack_connect_canvas_sharing_blocked", DROP,
     "Admin has disabled Canvas File sharing in all Slack Connect communications."),
    ("chat.postMessage", "slack_connect_file_link_sharing_blocked", DROP,
     "Admin has disabled Slack File sharing in all Slack Connect communications."),
    ("chat.postMessage", "slack_connect_lists_sharing_blocked", DROP,
     "Admin has disabled Lists sharing in all Slack Connect communications."),
    ("chat.postMessage", "team_not_found", END_WATCH,
     "This error occurs if, when using an org-wide token, the `channel_name` is passed instead of "
     "the `channel_id`."),
    ("chat.postMessage", "too_many_attachments", DROP,
     "Too many attachments were provided with this message. A maximum of 100 attachments are "
     "allowed on a message."),
    ("chat.postMessage", "too_many_contact_cards", DROP,
     "Too many contact_cards were provided with this message. A maximum of 10 contact cards are "
     "allowed on a message."),
    ("chat.postMessage", "cannot_reply_to_message", REPOST_PARENT,
     "This message type cannot have thread replies."),
    ("chat.postMessage", "missing_file_data", DROP,
     "Attempted to share a file but some required data was missing."),
    ("chat.postMessage", "attachment_payload_limit_exceeded", DROP, "Attachment payload size is too long."),
    # https://docs.slack.dev/reference/methods/chat.update/
    ("chat.update", "as_user_not_supported", DROP,
     "The `as_user` parameter does not function with workspace apps."),
    ("chat.update", "blocked_file_type", DROP, "Admin has disabled uploading this type of file."),
    ("chat.update", "block_mismatch", DROP, "Rich-text blocks cannot be replaced with non-rich-text blocks"),
    ("chat.update", "cant_broadcast_message", DROP, "Unable to broadcast this message."),
    ("chat.update", "cant_update_message", REPOST_PARENT,
     "Authenticated user does not have permission to update this message."),
    ("chat.update", "channel_not_found", END_WATCH, "Value passed for `channel` was invalid."),
    ("chat.update", "edit_window_closed", DROP,
     "The message cannot be edited due to the team message edit settings"),
    ("chat.update", "external_channel_migrating", RETRY,
     "The channel is in the process of migrating and so the message cannot be updated at this time."),
    ("chat.update", "file_deleted", DROP, "File to share deleted."),
    ("chat.update", "file_is_deleted", DROP, "The file is deleted."),
    ("chat.update", "file_not_found", DROP, "One or more of the provided file IDs could not be found."),
    ("chat.update", "file_share_limit_reached", DROP, "The file has reached the share limit."),
    ("chat.update", "invalid_attachments", DROP, "The attachments were invalid."),
    ("chat.update", "invalid_blocks", DROP, "The blocks were invalid for the requesting user."),
    ("chat.update", "invalid_blocks_format", DROP,
     "The `blocks` array is not a valid JSON object or doesn't match the Block Kit syntax."),
    ("chat.update", "invalid_metadata_format", DROP, "Invalid metadata format provided"),
    ("chat.update", "invalid_metadata_schema", DROP, "Invalid metadata schema provided"),
    ("chat.update", "is_inactive", END_WATCH,
     "The message cannot be edited within a frozen, archived or deleted channel."),
    ("chat.update", "markdown_text_conflict", DROP,
     "Markdown text cannot be used in conjunction with `blocks` or `text` argument."),
    ("chat.update", "max_file_sharing_exceeded", DROP, "Exceeded max allowed files shared."),
    ("chat.update", "message_limit_exceeded", RETRY,
     "Members on this team are sending too many messages. For more details, see "
     "https://slack.com/help/articles/115002422943-Usage-limits-for-free-workspaces."),
    ("chat.update", "message_not_found", REPOST_PARENT, "No message exists with the requested timestamp."),
    ("chat.update", "metadata_must_be_sent_from_app", DROP,
     "Message metadata can only be posted or updated using an app-level token"),
    ("chat.update", "metadata_too_large", DROP, "Metadata exceeds size limit"),
    ("chat.update", "msg_too_long", DROP,
     "Message text is too long. The `text` field cannot exceed 4,000 characters."),
    ("chat.update", "no_dual_broadcast_content_update", DROP,
     "Can't broadcast an old reply and update the content at the same time."),
    ("chat.update", "no_text", DROP, "No message text provided"),
    ("chat.update", "posting_to_channel_denied", END_WATCH,
     "The user does not have permission to share files in this channel."),
    ("chat.update", "slack_connect_blocked_file_type", DROP,
     "Files with certain extensions are blocked from being uploaded in all Slack Connect messages."),
    ("chat.update", "slack_connect_canvas_sharing_blocked", DROP,
     "Admin has disabled sharing of canvas links in all Slack Connect messages."),
    ("chat.update", "slack_connect_clip_sharing_blocked", DROP,
     "Admin has disabled Clip uploads in Slack Connect channels."),
    ("chat.update", "slack_connect_file_link_sharing_blocked", DROP,
     "Admin has disabled Slack file sharing in all Slack Connect messages."),
    ("chat.update", "slack_connect_file_upload_sharing_blocked", DROP,
     "Admin has disabled file uploads in all Slack Connect messages."),
    ("chat.update", "streaming_state_conflict", DROP,
     "The message is currently streaming text and cannot be edited."),
    ("chat.update", "team_not_found", END_WATCH,
     "Team associated with the message and channel could not be found."),
    ("chat.update", "too_many_attachments", DROP,
     "Too many attachments were provided with this message. A maximum of 100 attachments are "
     "allowed on a message."),
    ("chat.update", "unable_to_share_files", DROP, "Sharing the files failed."),
    ("chat.update", "update_failed", RETRY, "Internal update failure."),
    # https://docs.slack.dev/reference/methods/chat.postEphemeral/
    ("chat.postEphemeral", "channel_not_found", END_WATCH, "Value passed for `channel` was invalid."),
    ("chat.postEphemeral", "invalid_blocks", DROP, "Blocks submitted with this message are not valid"),
    ("chat.postEphemeral", "invalid_blocks_format", DROP,
     "The `blocks` is not a valid JSON object or doesn't match the Block Kit syntax."),
    ("chat.postEphemeral", "is_archived", END_WATCH, "Channel has been archived."),
    ("chat.postEphemeral", "markdown_text_conflict", DROP,
     "Markdown text cannot be used in conjunction with `blocks` or `text` argument."),
    ("chat.postEphemeral", "message_limit_exceeded", RETRY,
     "Members on this team are sending too many messages. For more details, see "
     "https://slack.com/help/articles/115002422943-Usage-limits-for-free-workspaces"),
    ("chat.postEphemeral", "messages_tab_disabled", END_WATCH, "Messages tab for the app is disabled."),
    ("chat.postEphemeral", "msg_too_long", DROP, "Message text is too long"),
    ("chat.postEphemeral", "no_text", DROP, "No message text provided"),
    ("chat.postEphemeral", "restricted_action", END_WATCH,
     "A workspace preference prevents the authenticated user from posting."),
    ("chat.postEphemeral", "too_many_attachments", DROP,
     "Too many attachments were provided with this message. A maximum of 100 attachments are "
     "allowed on a message."),
    ("chat.postEphemeral", "user_not_in_channel", DROP,
     "Intended recipient is not in the specified channel."),
    ("chat.postEphemeral", "not_in_channel", END_WATCH,
     "Cannot post user messages to a channel they are not in."),
    ("chat.postEphemeral", "invalid_attachments", DROP, "Attachments that contain blocks are not valid"),
    ("chat.postEphemeral", "cannot_reply_to_message", DROP, "This message type cannot have thread replies."),
    # https://docs.slack.dev/reference/methods/chat.getPermalink/
    ("chat.getPermalink", "channel_not_found", DROP, "Value passed for `channel` was invalid."),
    ("chat.getPermalink", "message_not_found", DROP,
     "The message identified by `message_ts` could not be found."),
    # https://docs.slack.dev/reference/methods/conversations.history/
    ("conversations.history", "channel_is_limited_access", DROP,
     "The user has no access to the channel. This is only applicable to private Salesforce record channels."),
    ("conversations.history", "channel_not_found", DROP, "Value passed for `channel` was invalid."),
    ("conversations.history", "invalid_cursor", DROP,
     "Value passed for `cursor` was not valid or is no longer valid."),
    ("conversations.history", "invalid_metadata_filter_keys", DROP,
     "Value passed for `metadata_keys_to_include` was invalid. Must be valid json array of strings."),
    ("conversations.history", "invalid_ts_latest", DROP, "Value passed for `latest` was invalid"),
    ("conversations.history", "invalid_ts_oldest", DROP, "Value passed for `oldest` was invalid"),
    ("conversations.history", "not_in_channel", DROP,
     "The token used does not have access to the proper channel. Only user tokens can access public channels "
     "they are not in."),
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal/
    ("files.getUploadURLExternal", "alt_txt_too_large", NO_UPLOAD,
     "Description for the image is longer than the limit of 1000 character"),
    ("files.getUploadURLExternal", "file_upload_size_restricted", NO_UPLOAD,
     "The size of provided file is too large, as the team has restricted uploads of large files."),
    ("files.getUploadURLExternal", "file_uploads_disabled", NO_UPLOAD, "Team has disabled all file uploads."),
    ("files.getUploadURLExternal", "missing_argument", NO_UPLOAD,
     "A required argument was not provided. Typically only occurs when the `length` provided is 0."),
    ("files.getUploadURLExternal", "snippet_too_large", NO_UPLOAD,
     "The provided `length` is too large to create a snippet, which are limited to 1MB."),
    ("files.getUploadURLExternal", "storage_limit_reached", NO_UPLOAD,
     "File storage limit has been reached. This occurs when free teams have uploaded 5GB of files."),
    ("files.getUploadURLExternal", "unknown_snippet_type", NO_UPLOAD,
     "The provided `snippet_type` is not a supported type."),
    ("files.getUploadURLExternal", "unknown_subtype", NO_UPLOAD,
     "The provided `subtype` is not a supported type."),
    ("files.getUploadURLExternal", "file_type_not_allowed", NO_UPLOAD, "The file type is not allowed."),
    ("files.getUploadURLExternal", "file_uploads_except_images_disabled", NO_UPLOAD,
     "File uploads except images are disabled."),
    # https://docs.slack.dev/reference/methods/files.completeUploadExternal/
    ("files.completeUploadExternal", "access_denied", NO_UPLOAD, "User is not the owner of the file."),
    ("files.completeUploadExternal", "channel_not_found", NO_UPLOAD,
     "Value passed for `channel_id` was invalid."),
    ("files.completeUploadExternal", "file_not_found", NO_UPLOAD,
     "Could not find the file from the upload ticket."),
    ("files.completeUploadExternal", "file_update_failed", NO_UPLOAD,
     "Failure occurred when attempting to update the file."),
    ("files.completeUploadExternal", "invalid_blocks", NO_UPLOAD,
     "Provided blocks are in the incorrect format."),
    ("files.completeUploadExternal", "invalid_channel", NO_UPLOAD,
     "Channel could not be found or channel specified is invalid."),
    ("files.completeUploadExternal", "not_in_channel", NO_UPLOAD,
     "User/bot membership is required for the specified channel."),
    ("files.completeUploadExternal", "posting_to_channel_denied", NO_UPLOAD,
     "User is not authorized to post to channel."),
    ("files.completeUploadExternal", "channels_limit_exceeded", NO_UPLOAD,
     "Exceeded the channel limit. A maximum of 100 channels is allowed per request."),
    ("files.completeUploadExternal", "file_type_not_allowed", NO_UPLOAD,
     "The file type is not permitted based on the team's allowed_file_upload_types preference."),
    ("files.completeUploadExternal", "file_uploads_except_images_disabled", NO_UPLOAD,
     "Only image file uploads are permitted for this team."),
    # https://docs.slack.dev/reference/methods/auth.test/
    ("auth.test", "internal_error", RETRY, "An internal error has been found."),
    ("auth.test", "invalid_auth", STOP_SENDING, "Method was called with invalid credentials"),
]

# The errors every method page lists (Slack's common errors; slack-api-ref methods/_errors/common.json, and
# invalid_auth, invalid_arguments, internal_error from the pages), with why each outcome.
COMMON_ROWS = [
    ("invalid_auth", STOP_SENDING, "Some aspect of authentication cannot be validated"),
    ("not_authed", STOP_SENDING, "No authentication token provided"),
    ("account_inactive", STOP_SENDING, "Authentication token is for a deleted user or workspace"),
    ("token_revoked", STOP_SENDING,
     "Authentication token is for a deleted user or workspace or the app has been removed"),
    ("token_expired", STOP_SENDING, "Authentication token has expired"),
    ("not_allowed_token_type", STOP_SENDING, "The token type used in this request is not allowed"),
    ("is_bot", STOP_SENDING, "This method cannot be called by a legacy bot"),
    ("two_factor_setup_required", STOP_SENDING, "Two factor setup is required"),
    ("enterprise_is_restricted", STOP_SENDING, "The method cannot be called from an Enterprise"),
    ("accesslimited", STOP_SENDING, "Access to this method is limited on the current network"),
    ("missing_scope", STOP_SENDING, "The token used is not granted the specific scope permissions required"),
    ("access_denied", END_WATCH, "Access to a resource specified in the request is denied"),
    ("no_permission", END_WATCH,
     "The workspace token used does not have necessary permission to send message"),
    ("ekm_access_denied", END_WATCH, "Administrators have suspended the ability to post a message"),
    ("ratelimited", RETRY, "The request has been ratelimited"),
    ("request_timeout", RETRY,
     "The method was called via a POST request, but the POST data was either missing or truncated"),
    ("service_unavailable", RETRY, "The service is temporarily unavailable"),
    ("fatal_error", RETRY,
     "The server could not complete your operation(s) without encountering a catastrophic error"),
    ("internal_error", RETRY,
     "The server could not complete your operation(s) without encountering an error"),
    ("team_added_to_org", RETRY,
     "The workspace is undergoing an enterprise migration and will not be available until "
     "migration is complete"),
    ("org_login_required", RETRY,
     "The workspace is undergoing an enterprise migration and will not be available until "
     "migration is complete"),
    ("invalid_arguments", DROP, "The method was called with invalid arguments"),
    ("invalid_arg_name", DROP,
     "The method was passed an argument whose name falls outside the bounds of accepted or expected values"),
    ("invalid_array_arg", DROP, "The method was passed an array as an argument"),
    ("invalid_charset", DROP,
     "The method was called via a POST request, but the charset specified in the Content-Type "
     "header was invalid"),
    ("invalid_form_data", DROP,
     "The method was called via a POST request with Content-Type application/x-www-form-urlencoded or "
     "multipart/form-data, but the form data was either missing or syntactically invalid"),
    ("invalid_post_type", DROP,
     "The method was called via a POST request, but the specified Content-Type was invalid"),
    ("missing_post_type", DROP,
     "The method was called via a POST request and included a data payload, but the request did not include "
     "a Content-Type header"),
    ("deprecated_endpoint", DROP, "The endpoint has been deprecated"),
    ("method_deprecated", DROP, "The method has been deprecated"),
    ("unknown_method", DROP, "Unknown method"),
]


def _reference(method: str) -> dict[str, str]:
    page = json.loads((REFERENCE / f"{method}.json").read_text(encoding="utf-8"))
    return {code: entry["desc"] for code, entry in page["errors"].items()}


@pytest.mark.parametrize(("method", "code", "outcome", "desc"), ROWS, ids=[f"{r[0]}:{r[1]}" for r in ROWS])
def test_each_methods_code_has_the_outcome_its_description_calls_for(
        method: str, code: str, outcome: Outcome, desc: str) -> None:
    assert _reference(method)[code] == desc  # the quote is the page's own
    assert classify(method, code) is outcome


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_rows_are_every_code_each_page_lists(method: str) -> None:
    assert {code for m, code, _, _ in ROWS if m == method} == set(_reference(method))


def test_a_postmessage_to_a_channel_not_found_ends_the_watch_and_never_only_drops_the_message() -> None:
    """The issue's example: "Value passed for `channel` was invalid." holds for every later message too."""
    assert classify("chat.postMessage", "channel_not_found") is Outcome.END_WATCH
    assert classify("chat.update", "channel_not_found") is Outcome.END_WATCH
    assert classify("chat.getPermalink", "channel_not_found") is Outcome.DROP  # only a link is lost


@pytest.mark.parametrize(("code", "outcome", "why"), COMMON_ROWS, ids=[r[0] for r in COMMON_ROWS])
def test_each_common_code_has_its_outcome_on_every_method(code: str, outcome: Outcome, why: str) -> None:
    assert GENERIC[code] is outcome
    for method in ("chat.postMessage", "chat.update", "conversations.history", "auth.test"):
        own = METHODS[method].get(code)
        assert classify(method, code) is (own or outcome), (method, why)
    for method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
        # an upload's refusal costs the upload; token trouble and Slack's own trouble still count as such
        want = outcome if outcome in (STOP_SENDING, RETRY) else NO_UPLOAD
        if code in METHODS[method]:
            want = METHODS[method][code]
        assert classify(method, code) is want, (method, why)
    assert {c for c, _, _ in COMMON_ROWS} == set(GENERIC)


def test_a_code_no_table_knows_is_none_for_the_callers_default_and_methods_own_codes_stay_their_own() -> None:
    assert classify("chat.postMessage", "a_code_slack_adds_later") is None
    assert classify("no.such_method", "channel_not_found") is None
    # the common table applies to any method
    assert classify("no.such_method", "invalid_auth") is STOP_SENDING
    # a method named after "response_url" too
    assert classify("views.publish", "invalid_auth") is STOP_SENDING
    assert classify("views.publish", "used_url") is None  # response_url's own codes are its own
    assert classify("response_url", "invalid_auth") is None  # response_url has its own table only
    assert classify("files.getUploadURLExternal", "missing_scope") is NO_UPLOAD  # files:write only
    assert classify("files.completeUploadExternal", "ratelimited") is RETRY


# response_url (Bolt's respond()): https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks
# "invalid_payload ... user_not_found ... channel_not_found ... channel_is_archived ... action_prohibited ...
# no_text ... rollup_error": the request or its target is wrong (DROP), or Slack failed (rollup_error: RETRY).
RESPONSE_ROWS = [
    ("invalid_payload", DROP), ("user_not_found", DROP), ("action_prohibited", DROP),
    ("channel_not_found", DROP), ("channel_is_archived", DROP), ("no_text", DROP), ("invalid_blocks", DROP),
    ("too_many_attachments", DROP),
    ("expired_url", DROP), ("used_url", DROP),  # the fake Slack's words for a spent or old URL: never again
    ("rollup_error", RETRY), ("ratelimited", RETRY), ("internal_error", RETRY),
    ("service_unavailable", RETRY),
]


@pytest.mark.parametrize(("code", "outcome"), RESPONSE_ROWS, ids=[r[0] for r in RESPONSE_ROWS])
def test_a_response_url_code_wins_over_its_http_status(code: str, outcome: Outcome) -> None:
    assert classify("response_url", code) is outcome
    for status in (400, 404, 429, 500, 503):
        assert classify_http(status, code) is outcome
        assert classify_http(status, f"  {code}\n") is outcome  # as a body ends
    assert {c for c, _ in RESPONSE_ROWS} == set(RESPONSE_URL)


@pytest.mark.parametrize(("status", "outcome"), [
    (400, DROP), (403, DROP), (404, DROP), (410, DROP), (428, DROP), (499, DROP),
    (429, RETRY), (500, RETRY), (502, RETRY), (503, RETRY), (599, RETRY),
])
def test_an_unknown_response_url_code_goes_by_status_429_and_5xx_transient(
        status: int, outcome: Outcome) -> None:
    assert classify_http(status, "something_new") is outcome
    assert classify_http(status, "") is outcome


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "30"}, 30.0),
    ({"RETRY-AFTER": " 1.5 "}, 1.5),
    ({"retry-after": ["7", "9"]}, 7.0),  # the sync client's lists: the first value
    ({"Retry-After": "0"}, 0.0),
    ({"Retry-After": "-1"}, None),
    ({"Retry-After": []}, None),
    ({"Retry-After": "soon"}, None),
    ({"X-Retry-After": "5", "RateLimit-Reset": "6", "Retry-After-Ms": "7"}, None),  # only Retry-After itself
    ({"X-Retry-After": "5", "Retry-After": "3"}, 3.0),
    ({}, None),
])
def test_retry_after_reads_only_the_retry_after_header(
        headers: dict[str, object], seconds: float | None) -> None:
    assert retry_after(headers) == seconds
    if all(isinstance(v, str) for v in headers.values()):
        assert retry_after(CIMultiDictProxy(CIMultiDict(headers))) == seconds  # the async client's multidict
