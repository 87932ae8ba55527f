"""The Slack error table: every code Slack's method reference lists for each method the bot calls is
classified."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from bot.slack.errors import GENERIC, METHODS, UPLOAD_METHODS, Outcome, classify, classify_http, retry_after

# The "Errors" tables of https://docs.slack.dev/reference/methods/<method>/ as Slack lists them (read in
# slack-ruby/slack-api-ref, docs.slack.dev/methods/<method>.json), and the common errors every page lists
# (methods/_errors/common.json there, plus invalid_auth, invalid_arguments and internal_error from the pages).
DOCUMENTED = {
    "chat.postMessage": """app_access_restricted as_user_not_supported attachment_payload_limit_exceeded
        cannot_reply_to_message channel_not_found draft_already_deleted draft_already_sent draft_has_conflict
        draft_not_found duplicate_channel_not_found duplicate_message_not_found ekm_access_denied
        invalid_blocks invalid_blocks_format invalid_metadata_format invalid_metadata_schema is_archived
        markdown_text_conflict message_limit_exceeded messages_tab_disabled metadata_must_be_sent_from_app
        metadata_too_large missing_file_data msg_blocks_too_long no_text not_in_channel rate_limited
        restricted_action restricted_action_non_threadable_channel restricted_action_read_only_channel
        restricted_action_thread_locked restricted_action_thread_only_channel send_on_behalf_not_allowed
        slack_connect_canvas_sharing_blocked slack_connect_file_link_sharing_blocked
        slack_connect_lists_sharing_blocked team_not_found too_many_attachments too_many_contact_cards""",
    "chat.update": """as_user_not_supported block_mismatch blocked_file_type cant_broadcast_message
        cant_update_message channel_not_found edit_window_closed external_channel_migrating file_deleted
        file_is_deleted file_not_found file_share_limit_reached invalid_attachments invalid_blocks
        invalid_blocks_format invalid_metadata_format invalid_metadata_schema is_inactive
        markdown_text_conflict max_file_sharing_exceeded message_limit_exceeded message_not_found
        metadata_must_be_sent_from_app metadata_too_large msg_too_long no_dual_broadcast_content_update
        no_text posting_to_channel_denied slack_connect_blocked_file_type slack_connect_canvas_sharing_blocked
        slack_connect_clip_sharing_blocked slack_connect_file_link_sharing_blocked
        slack_connect_file_upload_sharing_blocked streaming_state_conflict team_not_found too_many_attachments
        unable_to_share_files update_failed""",
    "chat.postEphemeral": """cannot_reply_to_message channel_not_found invalid_attachments invalid_blocks
        invalid_blocks_format is_archived markdown_text_conflict message_limit_exceeded messages_tab_disabled
        msg_too_long no_text not_in_channel restricted_action too_many_attachments user_not_in_channel""",
    "chat.getPermalink": "channel_not_found message_not_found",
    "conversations.history": """channel_is_limited_access channel_not_found invalid_cursor
        invalid_metadata_filter_keys invalid_ts_latest invalid_ts_oldest not_in_channel""",
    "files.getUploadURLExternal": """alt_txt_too_large file_type_not_allowed file_upload_size_restricted
        file_uploads_disabled file_uploads_except_images_disabled missing_argument snippet_too_large
        storage_limit_reached unknown_snippet_type unknown_subtype""",
    "files.completeUploadExternal": """access_denied channel_not_found channels_limit_exceeded file_not_found
        file_type_not_allowed file_update_failed file_uploads_except_images_disabled invalid_blocks
        invalid_channel not_in_channel posting_to_channel_denied""",
    "auth.test": "internal_error invalid_auth",
}
COMMON = """access_denied accesslimited account_inactive deprecated_endpoint ekm_access_denied
    enterprise_is_restricted fatal_error invalid_arg_name invalid_array_arg invalid_charset invalid_form_data
    invalid_post_type is_bot method_deprecated missing_post_type missing_scope no_permission
    not_allowed_token_type not_authed org_login_required ratelimited request_timeout service_unavailable
    team_added_to_org token_expired token_revoked two_factor_setup_required unknown_method invalid_auth
    invalid_arguments internal_error""".split()


@pytest.mark.parametrize("method", sorted(DOCUMENTED))
def test_every_documented_code_of_every_method_is_classified(method: str) -> None:
    codes = DOCUMENTED[method].split() + COMMON
    unclassified = [c for c in codes if classify(method, c) is None]
    assert unclassified == []
    assert set(METHODS[method]) <= set(codes)  # nothing invented beside the reference


def test_the_table_covers_exactly_the_methods_the_bot_calls() -> None:
    assert set(METHODS) == set(DOCUMENTED)
    assert set(GENERIC) == set(COMMON)


def test_token_trouble_stops_sending_on_every_method() -> None:
    for method in DOCUMENTED:
        for code in ("token_revoked", "invalid_auth", "account_inactive", "token_expired", "not_authed"):
            assert classify(method, code) is Outcome.STOP_SENDING, (method, code)


@pytest.mark.parametrize("method", UPLOAD_METHODS)
def test_an_upload_can_cost_only_the_upload(method: str) -> None:
    for code in DOCUMENTED[method].split() + COMMON:
        assert classify(method, code) in (Outcome.NO_UPLOAD, Outcome.RETRY, Outcome.STOP_SENDING), code
    # files:write missing: chat:write still works
    assert classify(method, "missing_scope") is Outcome.NO_UPLOAD


def test_a_few_readings_that_matter() -> None:
    assert classify("chat.postMessage", "not_in_channel") is Outcome.END_WATCH
    # chat:write.public
    assert classify("files.completeUploadExternal", "not_in_channel") is Outcome.NO_UPLOAD
    assert classify("chat.postMessage", "missing_scope") is Outcome.STOP_SENDING
    assert classify("chat.update", "message_not_found") is Outcome.REPOST_PARENT
    assert classify("chat.postMessage", "ratelimited") is Outcome.RETRY
    assert classify("chat.postMessage", "invalid_blocks") is Outcome.DROP
    assert classify("chat.postMessage", "something_slack_added_later") is None


def test_response_url_answers_by_code_then_by_status() -> None:
    assert classify_http(404, "expired_url") is Outcome.DROP
    assert classify_http(500, "rollup_error") is Outcome.RETRY
    assert classify_http(503, "") is Outcome.RETRY and classify_http(429, "") is Outcome.RETRY
    assert classify_http(400, "what_is_this") is Outcome.DROP


def test_retry_after_from_the_async_clients_multidict_and_the_sync_clients_lists() -> None:
    assert retry_after(CIMultiDictProxy(CIMultiDict({"Retry-After": "30"}))) == 30.0
    assert retry_after(CIMultiDictProxy(CIMultiDict({"retry-after": "2"}))) == 2.0
    assert retry_after({"retry-after": ["7"]}) == 7.0
    assert retry_after({"Content-Type": ["application/json"]}) is None
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after(None) is None
