"""The command line: `demo` where the stand-ins are absent (the Docker image), `--help`'s environment (from
the one table the code reads, which the docs show too), and config errors, each exit 2."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.cli import main
from bot.support.config import ENVIRONMENT, ConfigError, Environment

ROOT = Path(__file__).resolve().parents[2]

# Python as it is where bot/offline/ was never installed: None in sys.modules makes importing it (or any
# module in it) raise ModuleNotFoundError, as a missing package does.
WITHOUT_OFFLINE = """\
import sys
sys.modules["bot.offline"] = None
from bot.cli import main
sys.exit(main(["demo"]))
"""


def test_demo_without_the_stand_ins_says_so_in_one_line_and_exits_2() -> None:
    out = subprocess.run([sys.executable, "-c", WITHOUT_OFFLINE], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "jobstatus-bot: the demo is not in this installation (the Docker image leaves bot/offline/ out)"]


# -- --help lists the environment, from the one table the code reads ---------------------------------------

def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "check", "migrate"])
def test_help_lists_the_environment_variables_the_command_reads(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(command, capsys)
    assert "environment variables:" in text
    for v in ENVIRONMENT:
        if command in v.commands:
            assert re.search(rf"^  {v.name} ", text, re.M), v.name
            assert f"(default: {v.default or 'unset'})" in " ".join(text.split()), v.name
        else:
            assert v.name not in text
    # the others (LOG_*) bot/support/logs.py reads, before the config
    read = {v.field for v in ENVIRONMENT if v.field}
    assert read == set(Environment.model_fields)  # every field of Environment comes from the table


def test_the_docs_environment_table_is_the_table_the_code_reads() -> None:
    """docs/configuration.md's table, as the docs build writes it (docs/hooks.py), from the same
    ENVIRONMENT."""
    hooks = load_docs_hooks()
    page = hooks.expand((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"))
    section = page.split("## Environment", 1)[1].split("\n#", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([A-Z_]+)` \| ([^|]*) \|", section, re.M)}
    assert set(rows) == {v.name for v in ENVIRONMENT}
    for v in ENVIRONMENT:
        assert rows[v.name].strip() == (f"`{v.default}`" if v.default else "unset"), v.name


def load_docs_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_environment_is_read_from_the_table() -> None:
    env = Environment.from_env({"SLACK_APP_TOKEN": "", "SLACK_API_URL": "http://127.0.0.1:9/api",
                                "PORT": "8080", "JOBSTATUS_CONFIG": ""})
    assert env.slack_app_token is None and env.slack_api_url == "http://127.0.0.1:9/api/" and env.port == 8080
    assert env.config_path == "./jobstatus.yaml"  # empty is unset
    with pytest.raises(ConfigError, match="environment variable PORT"):
        Environment.from_env({"PORT": "http"})


# -- config errors: exit 2, whatever the mistake ----------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(("content", "says"), [
    (b"backends:\n  f:\n    type: [fusion\n", "not valid YAML"),
    (b"backends:\n\tf: 1\n", "not valid YAML"),
    (b"\xff\xfebackends: {}\n", "not UTF-8"),
    (b"- just\n- a list\n", "expected a mapping"),
])
def test_every_config_error_exits_2(command: str, content: bytes, says: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "jobstatus.yaml"
    cfg.write_bytes(content)
    monkeypatch.setenv("JOBSTATUS_CONFIG", str(cfg))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main([command]) == 2
    out = capsys.readouterr()
    assert out.out == "" and says in out.err and str(cfg) in out.err


def test_a_bad_port_is_a_config_error_too(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORT", "eighty")
    assert main(["run"]) == 2
    assert "environment variable PORT" in capsys.readouterr().err


def test_metrics_addr_is_host_and_port_or_a_config_error_naming_it() -> None:
    assert Environment.from_env({"METRICS_ADDR": "127.0.0.1:9100"}).metrics_host_port == ("127.0.0.1", 9100)
    assert Environment.from_env({"METRICS_ADDR": "[::1]:0"}).metrics_host_port == ("::1", 0)
    assert Environment.from_env({"METRICS_ADDR": ""}).metrics_host_port is None  # empty is unset
    for bad in ("9100", "localhost", ":9100", "host:port", "host:70000"):
        with pytest.raises(ConfigError, match="environment variable METRICS_ADDR: .*host:port"):
            Environment.from_env({"METRICS_ADDR": bad})


def test_secret_keys_never_show_in_the_environments_repr() -> None:
    env = Environment.from_env({"JOBSTATUS_SECRET_KEYS": "k" * 44})
    assert env.secret_keys == "k" * 44 and "k" * 44 not in repr(env)
