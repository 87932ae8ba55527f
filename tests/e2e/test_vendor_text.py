"""Vendor text reaches Slack only where it cannot become a mention or a link (issue 19, item 9): a failure
message with `@here`, `<!channel>`, `#general` and a URL, watched through the real bot; what reached the fake
Slack is checked: every mrkdwn text object is `verbatim: true` (docs.slack.dev/reference/block-kit/
composition-objects/text-object: no automatic linking of URLs, channel names or mentions), `<`, `>`, `&` are
escaped, and the top-level text goes with `parse: none` and `link_names: false` (chat.postMessage,
chat.update)."""

from __future__ import annotations

import json
from typing import Any

from bot.offline.vendors.core import Step
from tests.conftest import Harness

HOSTILE = "Load failed: @here <!channel> see #general and https://evil.example now"


def mrkdwn_objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "mrkdwn" else []
        return found + [o for v in node.values() for o in mrkdwn_objects(v)]
    if isinstance(node, list):
        return [o for v in node for o in mrkdwn_objects(v)]
    return []


async def test_a_vendors_mentions_channels_and_urls_reach_slack_as_words(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(4400, name="GL <!here> @channel", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4400")
    h.sim.fusion.set_state(4400, "FAILED", message=HOSTILE)
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies()), what="the failure reply")
    await h.slack.wait_for(lambda: "failed" in h.slack.message("C0001", h.parents()[0].ts).text,
                           what="the parent updated")

    sent = h.slack.calls_of("chat.postMessage") + h.slack.calls_of("chat.update")
    assert sent and all(c.ok for c in sent)
    carried = []
    for call in sent:
        assert call.args.get("parse") == "none" and call.args.get("link_names") in (False, "false", "0"), (
            call.args
        )
        assert "<!channel>" not in call.args["text"] and "<!here>" not in call.args["text"]
        for o in mrkdwn_objects(call.args.get("blocks") or []):
            assert o.get("verbatim") is True, (call.method, o)
            carried.append(o["text"])
    said = "\n".join(carried)
    # the vendor's words are all there, as words: escaped markup, and plain @here/#general/URL in verbatim
    # text
    assert (
        "&lt;!channel&gt;" in said
        and "@here" in said
        and "#general" in said
        and "https://evil.example" in said
    )
    assert "GL &lt;!here&gt; @channel" in said
    everything = json.dumps([c.args for c in sent])
    assert (
        "<!channel>" not in everything and "<!here>" not in everything and "<https://evil" not in everything
    )
