"""The status tables' one decision beyond the phase: which vendor words are worth a thread reply."""

from __future__ import annotations

import pytest

from bot.domain.states import (
    EPM_WORDS,
    FUSION,
    IMMUTA,
    VAULT,
    WORDS_WITH_MEANING,
    Phase,
    carries_meaning,
    worth_a_reply,
)

TABLES = {"Fusion": FUSION, "Vault": VAULT, "EPM": EPM_WORDS, "Immuta": IMMUTA}


@pytest.mark.parametrize(
    ("old_phase", "old_word", "phase", "word", "worth"),
    [
        # Fusion's two words for one running job
        (Phase.RUNNING, "RUNNING", Phase.RUNNING, "IN_PROGRESS", False),
        (Phase.RUNNING, "-1 In Progress", Phase.RUNNING, "-1 RUNNING", False),  # EPM, the word beside code -1
        (Phase.QUEUED, "ENQUEUED", Phase.QUEUED, "WAIT", False),  # steps of waiting
        (Phase.QUEUED, "SCHEDULED", Phase.QUEUED, "QUEUED", False),  # Vault
        (Phase.QUEUED, "created", Phase.QUEUED, "created", False),
        (Phase.QUEUED, "WAIT", Phase.QUEUED, "BLOCKED", True),  # trouble comes...
        (Phase.QUEUED, "BLOCKED", Phase.QUEUED, "READY", True),  # ...and goes: the thread says both
        (Phase.PAUSED, "PAUSED", Phase.PAUSED, "HOLD", True),  # someone must release it
        (Phase.PAUSED, "HOLD", Phase.PAUSED, "ERROR_MANUAL_RECOVERY", True),
        (Phase.QUEUED, "ENQUEUED", Phase.QUEUED, "ERROR_AUTO_RETRY", True),
        (Phase.QUEUED, "created", Phase.QUEUED, "retry", True),  # Immuta: an attempt failed, it runs again
        (Phase.RUNNING, "RUNNING", Phase.SUCCEEDED, "SUCCEEDED", True),  # a new phase, always
        (Phase.RUNNING, "RUNNING", Phase.RUNNING, "Running", False),  # the same word in other letters
        (None, None, Phase.FAILED, "FAILED", True),  # a watch begun on a job that had ended
    ],
)
def test_a_new_phase_is_told_and_a_new_word_only_when_it_carries_meaning(
        old_phase: Phase | None, old_word: str | None, phase: Phase, word: str, worth: bool) -> None:
    assert worth_a_reply(old_phase, old_word, phase, word) is worth


def test_every_word_with_meaning_is_one_vendors_word_for_a_job_that_goes_on() -> None:
    """The set is read without knowing the vendor: each word must belong to one table only, in a phase that
    is not an end (a final word is told as a new phase anyway)."""
    for word in WORDS_WITH_MEANING:
        owners = {vendor: phase for vendor, table in TABLES.items() for key, phase in table.items()
                  if str(key).upper() == word}
        assert len(owners) == 1, (word, owners)
        [phase] = owners.values()
        assert not phase.terminal and carries_meaning(word.lower())
    assert not carries_meaning("RUNNING") and not carries_meaning("IN_PROGRESS") and not carries_meaning("")
