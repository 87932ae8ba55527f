"""Every pointer into README.md that the bot prints ("see README: Environment", or a path such as "Running it >
Environment") names a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.support.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
POINTER = re.compile(r"README(?:\.md)?: ([A-Z][^)\"'\n]*)")


def sections() -> set[str]:
    """Each heading of README.md (outside code blocks) by its title and by its path from the top: "Environment",
    "Running it > Environment"."""
    out: set[str] = set()
    trail: list[str] = []
    fenced = False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{2,6}) (.+)", line)
        if m:
            depth = len(m.group(1)) - 2
            trail = [*trail[:depth], m.group(2).strip()]
            out.update({trail[-1], " > ".join(trail)})
    return out


def pointers() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for m in POINTER.finditer(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), m.group(1).strip()))
    return found


def test_every_readme_pointer_in_the_bot_names_a_section_that_exists() -> None:
    assert pointers(), "no pointer found: the pattern no longer matches how the bot points at README.md"
    assert [(where, p) for where, p in pointers() if p not in sections()] == []


def test_run_without_slack_tokens_points_at_the_environment_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "jobstatus.yaml"
    config.write_text("backends:\n  fusion-prod: {type: fusion_jobscheduler, base_url: 'https://fa.test', "
                      "auth: {type: bearer, token: t}}\n")
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOBSTATUS_CONFIG", str(config))
    assert main(["run"]) == 2
    [pointer] = POINTER.findall(capsys.readouterr().err)
    assert pointer == "Environment" and pointer in sections()


def test_the_security_sections_locked_down_config_is_a_config_the_bot_takes(tmp_path: Path) -> None:
    """The example a security review copies must load as it is, with each rule it shows in force."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("A locked-down config:", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "jobstatus.yaml").write_text(block, encoding="utf-8")
    env = {name: "x" * 32 for name in re.findall(r"\$\{([A-Z_]+)\}", block)}
    env["EPM_TOKEN_URL"] = "https://login.example/oauth2/v1/token"
    settings = load_settings(tmp_path / "jobstatus.yaml", env)
    b = settings.backends["payroll-epm"]
    assert (b.users, b.channels, b.cancel, b.details) == (["S0PAYROLL"], ["C0PAYROLLOPS"], ["S0PAYROLLLEADS"],
                                                          ["C0PAYROLLOPS"])
    assert settings.api is not None and settings.api.tokens["payroll-pipeline"].backends == ["payroll-epm"]
