"""Slack's published budget per Web API method per workspace, as a table: what bot/slack/budget.py spends,
what the config's `slack_limits` may override (bot/support/config.py checks an override against it) and the
methods /metrics names. Data only, so the config reads it without importing the Slack adapter."""

from __future__ import annotations

# The budget per method, per minute per workspace. The tier is each method's reference page's "Rate limits"
# (docs.slack.dev/reference/methods/<method>/; the copies in ../shared/data/slack-method-reference/), the
# figure the rate-limit page's floor for that tier (Tier 3 "50+ per minute", Tier 4 "100+ per minute").
# Overridable per method in the config (`slack_limits`), e.g. after Slack grants an app more.
LIMITS: dict[str, int] = {
    "chat.update": 50,  # Tier 3: every parent's update
    "conversations.history": 50,  # Tier 3: the look for a parent posted before a crash
    "views.publish": 100,  # Tier 4: the Home tab
    "files.getUploadURLExternal": 100,  # Tier 4: a log file's upload, step 1...
    "files.completeUploadExternal": 100,  # Tier 4: ...and step 3
    # Special tier: "one message per second per channel, while also maintaining a workspace-wide limit".
    # The channel's second is the notifier's (bot/engine/notifier/pace.py: Bucket). The workspace's limit has
    # no published figure; 1,200 a minute lets 20 channels post at their full pace at once, and no more.
    "chat.postMessage": 1200,
}
