"""The docs' vendor table says what each backend type follows by, as the adapters do."""

from __future__ import annotations

import re
from pathlib import Path

from bot.backends import backend_classes

ROOT = Path(__file__).resolve().parents[3]


def table() -> dict[str, str]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split("### Backends by vendor", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| ([^|]+) \|$", section, re.MULTILINE)
    return {type_name: follow.strip() for type_name, follow in rows if type_name != "type"}


def test_every_backend_type_has_its_follow_by_in_the_docs() -> None:
    rows = table()
    assert set(rows) == set(backend_classes())
    for type_name, cls in backend_classes().items():
        if cls.follow_by:
            assert rows[type_name].startswith(cls.follow_by.split(" (")[0]), type_name
            assert ("exact case" in rows[type_name]) == cls.names_case_sensitive, type_name
        else:
            assert rows[type_name].startswith("cannot follow"), type_name
            assert cls.follow_hint, type_name
