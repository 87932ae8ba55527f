"""The docs site (mkdocs.yml, docs/) holds to the code: the generated reference parts (docs/hooks.py) cover
every config field, environment variable, API route and error code; the OpenAPI description the bot serves
matches its routes and its status table; the pages that show config show config the bot takes; the site
builds offline."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from bot.inbound import api
from bot.metrics import Metrics
from bot.operations.watching import Watching
from bot.support import config
from bot.support.config import ENVIRONMENT, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = load_hooks()


def models_of(model: type[BaseModel]) -> set[type[BaseModel]]:
    """`model` and every model its fields hold, however nested (lists, mappings, unions)."""
    found = {model}

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.update(models_of(annotation))
        for arg in getattr(annotation, "__args__", ()):
            walk(arg)

    for field in model.model_fields.values():
        walk(field.annotation)
    return found


def rows(markdown: str, heading: str) -> dict[str, list[str]]:
    """The table rows under `### heading` of the generated config reference, by key."""
    part = markdown.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return {m.group(1): [c.strip() for c in m.group(2).split(" | ")]
            for m in re.finditer(r"^\| `([a-z_0-9]+)` \| (.*) \|$", part, re.M)}


# -- the configuration reference ----------------------------------------------------------------------------

def test_the_config_reference_covers_every_model_the_config_file_holds() -> None:
    shown = {model for _heading, _where, model in hooks.SECTIONS}
    assert models_of(config.Settings) == shown


def test_every_config_field_is_a_row_with_its_default_and_its_docstring() -> None:
    reference = hooks.config_reference()
    for heading, _where, model in hooks.SECTIONS:
        table = rows(reference, heading)
        assert list(table) == list(model.model_fields), heading
        for name, field in model.model_fields.items():
            _type, default, meaning = table[name]
            assert meaning == " ".join((field.description or "").split()).replace("|", "\\|"), (heading, name)
            assert (default == "required") == field.is_required(), (heading, name)


@pytest.mark.parametrize(("heading", "key", "default"), [
    ("Top level", "watch_timeout", "`1d`"), ("Top level", "outage_note_after", "`5m`"),
    ("Top level", "history_retention", "`90d`"), ("Top level", "lease_seconds", "`15`"),
    ("Top level", "admins", "`[]`"), ("Top level", "api", "none"),
    ("A backend", "poll_interval", "`30`"), ("A backend", "max_concurrency", "`8`"),
    ("A backend", "http2", "`false`"), ("A backend", "cancel", "`owner`"), ("A backend", "details", "`[]`"),
    ("A backend", "base_url", "required"), ("A daily digest", "timezone", "`UTC`"),
    ("`auth: {type: api_key}`", "exchange", "`true`"),
])
def test_defaults_read_as_the_yaml_that_sets_them(heading: str, key: str, default: str) -> None:
    assert rows(hooks.config_reference(), heading)[key][1] == default


class Undocumented(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    said: int = 1
    """documented"""
    unsaid: int = 2


def test_a_field_without_a_docstring_stops_the_build_naming_it() -> None:
    assert Undocumented.model_fields["said"].description == "documented"
    with pytest.raises(ValueError, match="Undocumented.unsaid has no docstring"):
        hooks.field_rows(Undocumented)


def test_slack_limits_names_every_built_in_figure_of_the_budget() -> None:
    """`slack_limits` defaults to {} (the figures live in bot/slack/budget.py), so its meaning must name
    them."""
    from bot.slack.budget import LIMITS
    said = config.Settings.model_fields["slack_limits"].description or ""
    assert [m for m, n in LIMITS.items() if f"`{m}: {n}`" not in said] == []


def test_the_environment_reference_is_the_table_the_code_reads() -> None:
    table = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"^\| `([A-Z_]+)` \| ([^|]*) \| ([^|]*) \|", hooks.environment_reference(), re.M)}
    assert list(table) == [v.name for v in ENVIRONMENT]
    for v in ENVIRONMENT:
        default, commands = table[v.name]
        assert default.strip() == (f"`{v.default}`" if v.default else "unset"), v.name
        assert commands.strip() == ", ".join(f"`{c}`" for c in v.commands), v.name


def test_each_page_that_asks_for_a_generated_part_gets_it_and_every_part_is_asked_for() -> None:
    asked = {m.group(1): page.name for page in DOCS.glob("*.md")
             for m in hooks.MARKER.finditer(page.read_text(encoding="utf-8"))}
    assert asked == {"environment": "configuration.md", "config": "configuration.md", "http-api": "api.md"}
    page = hooks.expand((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert ("<!-- generated" not in page and "| `JOBSTATUS_SECRET_KEYS` |" in page
            and "| `lease_seconds` |" in page)


# -- the HTTP API's description -----------------------------------------------------------------------------

def mounted_routes() -> set[tuple[str, str]]:
    """(method, path) of every route Api.mount adds, except its catch-all refusals of other methods and the
    HEAD that aiohttp adds beside each GET."""
    app = web.Application()
    tokens = config.ApiConfig(tokens={"ci": config.ApiToken(token="t" * 32)})
    api.Api(tokens, cast(Watching, None), Metrics()).mount(app)
    return {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
            if route.method not in ("*", "HEAD") and route.resource is not None}


def test_the_openapi_description_names_exactly_the_routes_the_api_mounts() -> None:
    spec = api.openapi()
    described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert described | {("get", api.OPENAPI)} == mounted_routes()


def test_every_error_code_is_described_with_its_status_and_when_it_comes() -> None:
    spec = api.openapi()
    assert spec["components"]["schemas"]["Error"]["properties"]["error"]["enum"] == sorted(api.STATUS)
    assert set(api.WHEN) == set(api.STATUS)
    answered: set[str] = set()
    for ops in spec["paths"].values():
        for op in ops.values():
            for status, answer in op["responses"].items():
                for code in answer.get("x-error-codes", ()):
                    assert api.STATUS[code] == int(status), code
                    answered.add(code)
    assert answered == set(api.STATUS)


def test_the_watch_schema_names_every_field_an_answer_carries() -> None:
    """Api._body builds the answer; its keys are the schema's, so the docs' table of the watch is whole."""
    source = (ROOT / "bot" / "inbound" / "api.py").read_text(encoding="utf-8")
    body = source.split("def _body(", 1)[1].split("\n\n", 1)[0]
    keys = re.findall(r'^\s+"([a-z_]+)": ', body, re.M)
    assert keys == api.openapi()["components"]["schemas"]["Watch"]["required"]


def test_the_docs_api_page_renders_every_operation_and_code() -> None:
    page = hooks.expand((DOCS / "api.md").read_text(encoding="utf-8"))
    for path, ops in api.openapi()["paths"].items():
        for method in ops:
            assert f"### `{method.upper()} {path}`" in page
    for code, status in api.STATUS.items():
        assert f"| {status} | `{code}` |" in page, code


# -- pages that show config or commands ---------------------------------------------------------------------

def test_the_security_pages_locked_down_config_is_a_config_the_bot_takes(tmp_path: Path) -> None:
    """The example a security review copies must load as it is, with each rule it shows in force."""
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    block = text.split("A locked-down config:", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "jobstatus.yaml").write_text(block, encoding="utf-8")
    env = {name: "x" * 32 for name in re.findall(r"\$\{([A-Z_]+)\}", block)}
    env["EPM_TOKEN_URL"] = "https://login.example/oauth2/v1/token"
    settings = load_settings(tmp_path / "jobstatus.yaml", env)
    b = settings.backends["payroll-epm"]
    assert (b.users, b.channels, b.cancel, b.details) == (["S0PAYROLL"], ["C0PAYROLLOPS"], ["S0PAYROLLLEADS"],
                                                          ["C0PAYROLLOPS"])
    assert settings.api is not None and settings.api.tokens["payroll-pipeline"].backends == ["payroll-epm"]


# -- the site -----------------------------------------------------------------------------------------------

def test_the_site_lists_every_page_and_fetches_nothing_at_build_time() -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = [next(iter(entry.values())) for entry in site["nav"]]
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md"))
    assert site["theme"]["name"] == "material" and site["theme"]["font"] is False  # no web fonts
    assert site["plugins"] == ["search"]  # bundled with the theme; no privacy/social plugin, nothing fetched
    assert site["hooks"] == ["docs/hooks.py"] and site["strict"] is True
    # no script, stylesheet or font from elsewhere: a page that needs the internet does not read offline
    assert not {"extra_javascript", "extra_css"} & set(site)
