"""EPM status answers read defensively (bot/backends/epm_common.py): vendor garbage in a minor field never
costs the status."""

from __future__ import annotations

from bot.backends.epm_common import parse_epm_status
from bot.domain.states import Phase
from bot.domain.status import Link


def test_a_link_whose_rel_is_not_text_is_a_plain_link_not_an_unreadable_status() -> None:
    payload = {"status": 0, "jobId": 7,
               "links": [{"rel": ["job-details"], "href": "https://epm.example.com/j/7"},
                         {"rel": "job-details", "href": "https://epm.example.com/d/7"}]}
    status = parse_epm_status(payload, "7", "epm_data_integration")
    assert status.phase is Phase.SUCCEEDED
    assert status.links == (Link("Link", "https://epm.example.com/j/7"),
                            Link("Job details", "https://epm.example.com/d/7"))
