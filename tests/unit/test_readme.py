"""README.md is the newcomer's ten minutes: the two commands exactly as they run, and links that lead
somewhere. Every pointer into the docs that the bot prints ("see docs/configuration.md: Environment") names a
page and a section of it that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
POINTER = re.compile(r"(docs/[a-z0-9-]+\.md): ([A-Z][^)\"'\n]*)")


def sections(page: str) -> set[str]:
    """Each heading of a docs page (outside code blocks) by its title and by its path from the page's title:
    "Environment", "Configuration > Environment"."""
    out: set[str] = set()
    trail: list[str] = []
    fenced = False
    for line in (ROOT / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,6}) (.+)", line)
        if m:
            depth = len(m.group(1)) - 1
            trail = [*trail[:depth], m.group(2).strip()]
            out.update({trail[-1], " > ".join(trail)})
    return out


def pointers() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for m in POINTER.finditer(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), m.group(1), m.group(2).strip()))
    return found


def test_every_docs_pointer_in_the_bot_names_a_section_that_exists() -> None:
    assert pointers(), "no pointer found: the pattern no longer matches how the bot points at the docs"
    missing = [(where, page, s) for where, page, s in pointers()
               if not (ROOT / page).exists() or s not in sections(page)]
    assert missing == []


def test_no_pointer_into_the_readme_is_left_in_the_bot() -> None:
    """The README keeps only the two commands, a picture and links: a pointer to a section of it leads
    nowhere."""
    left = [(str(p.relative_to(ROOT)), m.group(0)) for p in sorted((ROOT / "bot").rglob("*.py"))
            for m in re.finditer(r"README(?:\.md)?: [A-Z][^)\"'\n]*", p.read_text(encoding="utf-8"))]
    assert left == []


def test_run_without_slack_tokens_points_at_the_environment_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "jobstatus.yaml"
    config.write_text("backends:\n  fusion-prod: {type: fusion_jobscheduler, base_url: 'https://fa.test', "
                      "auth: {type: bearer, token: t}}\n")
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOBSTATUS_CONFIG", str(config))
    assert main(["run"]) == 2
    [(page, section)] = POINTER.findall(capsys.readouterr().err)
    assert (page, section) == ("docs/configuration.md", "Environment") and section in sections(page)


def test_the_readme_starts_with_the_demo_and_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)\n```$", readme, re.M | re.S)
    assert blocks[:2] == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && jobstatus-bot demo",
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI installs the docs' extra too, and otherwise runs the README's command as it is
    assert ("python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test,docs]' && pytest\n"
            in ci)


def test_the_readme_is_read_in_ten_minutes_and_every_link_leads_to_a_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 80  # a newcomer's ten minutes; the rest is in docs/
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    linked = {link.removeprefix("docs/") for link in links if link.endswith(".md")}
    assert linked <= set(re.findall(r"^  - [^:]+: (\S+\.md)$", nav, re.M))
