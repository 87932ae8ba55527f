"""MkDocs hooks (mkdocs.yml `hooks:`): the reference parts of the docs, written at build time from the code
they describe, so they cannot drift from it.

A page asks for a generated part with a marker line of its own, `<!-- generated: NAME -->`:
- `environment`: the environment variables (bot.support.config.ENVIRONMENT, the table `--help` prints too);
- `config`: every key of the config file, from the pydantic models in bot/support/config.py (type, default,
  and the field's docstring as its meaning);
- `http-api`: the HTTP API, from the OpenAPI description the bot serves (bot.inbound.api.openapi()).

Everything renders to Markdown tables: no JavaScript and nothing fetched, so the site builds offline and
reads offline. tests/unit/test_docs.py checks that these cover every field, variable, route and error code.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bot.inbound import api
from bot.support import config

DURATION = "duration (seconds, or `30s`, `2m`, `1h`, `1d`)"
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)

# The config file's parts, in the order the reference shows them: (heading, where in the file, model).
SECTIONS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("Top level", "the file's top level", config.Settings),
    ("A backend", "`backends: {<name>: …}`", config.BackendConfig),
    ("`auth: {type: basic}`", "a backend's `auth`", config.BasicAuth),
    ("`auth: {type: bearer}`", "a backend's `auth`", config.BearerAuth),
    ("`auth: {type: oauth2}`", "a backend's `auth`", config.OAuth2ClientCredentials),
    ("`auth: {type: oauth2_refresh}`", "a backend's `auth`", config.OAuth2Refresh),
    ("`auth: {type: vault_session}`", "a backend's `auth`", config.VaultSession),
    ("`auth: {type: api_key}`", "a backend's `auth`", config.ApiKey),
    ("`api`", "`api:`", config.ApiConfig),
    ("An API token", "`api: {tokens: {<name>: …}}`", config.ApiToken),
    ("A daily digest", "`digests: [ … ]`", config.DigestConfig),
    ("`quotas`", "`quotas:`", config.QuotasConfig),
    ("A quota", "`quotas: {user | token | channel: …}`", config.Quota),
)


def _cell(text: str) -> str:
    """One table cell: on one line, and a `|` of the text cannot end the cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _is_duration(field: FieldInfo) -> bool:
    return any(getattr(m, "func", None) is config.parse_duration for m in field.metadata)


def type_name(annotation: Any) -> str:
    """A field's type in the words of the YAML it is written in."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        shown = [type_name(a) for a in args if a is not type(None)]
        if all(isinstance(a, type) and issubclass(a, BaseModel) for a in args if a is not type(None)) \
                and len(shown) > 1:
            return "one of the `auth` types below"
        return " or ".join(shown)
    if origin is typing.Annotated:
        if any(getattr(m, "func", None) is config.parse_duration for m in annotation.__metadata__):
            return DURATION
        return type_name(args[0])
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"mapping of name to {type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return next((f"see *{h}*" for h, _w, m in SECTIONS if m is annotation), annotation.__name__)
    return {str: "text", int: "integer", float: "number", bool: "`true` or `false`"}.get(
        annotation, str(annotation)
    )


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"`{int(seconds // size)}{unit}`"
    return f"`{seconds:g}`" if seconds >= 1 else f"`{seconds * 1000:g}ms`"


def default_of(field: FieldInfo) -> str:
    """A field's default as the reference shows it: `required`, `none`, or the value as written in YAML."""
    if field.is_required():
        return "required"
    value = field.default if field.default is not PydanticUndefined else None
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and _is_duration(field):
        return _duration(value)
    if isinstance(value, BaseModel):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.model_dump().items())
    return f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def field_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every field of `model`; a field without a docstring is an error, so
    a new setting cannot reach the reference undescribed."""
    rows = []
    for name, field in model.model_fields.items():
        if not field.description:
            raise ValueError(f"{model.__name__}.{name} has no docstring: say what it means under the field")
        kind = DURATION if _is_duration(field) else type_name(field.annotation)
        rows.append((f"`{name}`", kind, default_of(field), field.description))
    return rows


def config_reference() -> str:
    out: list[str] = []
    for heading, where, model in SECTIONS:
        out += [
            f"### {heading}",
            "",
            f"Where: {where}." + (f" {_cell(model.__doc__)}" if model.__doc__ else ""),
            "",
            "| key | type | default | meaning |",
            "| --- | --- | --- | --- |",
        ]
        out += [f"| {k} | {_cell(t)} | {_cell(d)} | {_cell(m)} |" for k, t, d, m in field_rows(model)]
        out.append("")
    return "\n".join(out)


def environment_reference() -> str:
    out = ["| variable | default | read by | meaning |", "| --- | --- | --- | --- |"]
    for v in config.ENVIRONMENT:
        default = f"`{v.default}`" if v.default else "unset"
        out.append(
            f"| `{v.name}` | {default} | {', '.join(f'`{c}`' for c in v.commands)} | {_cell(v.meaning)} |"
        )
    return "\n".join(out) + "\n"


def http_api_reference() -> str:
    """The OpenAPI description (bot.inbound.api.openapi()) as Markdown: each operation, its body and its
    answers, and the watch's fields."""
    spec = api.openapi()
    schemas = spec["components"]["schemas"]
    out = [f"Served as `GET {api.OPENAPI}` (no token needed; OpenAPI {spec['openapi']}).", ""]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            out += [f"### `{method.upper()} {path}`", "", f"{op['summary']}.", ""]
            if "requestBody" in op:
                body = schemas["WatchRequest"]
                out += ["Body: a JSON object, no other field.", "", "| field | required | meaning |",
                        "| --- | --- | --- |"]
                out += [
                    f"| `{k}` | {'yes' if k in body['required'] else 'no'} | "
                    f"{_cell(p.get('description', ''))}"
                    + (f" (`{p['pattern']}`)" if "pattern" in p else "")
                    + " |"
                    for k, p in body["properties"].items()
                ]
                out.append("")
            out += ["| status | `error` | when |", "| --- | --- | --- |"]
            for status, answer in op["responses"].items():
                codes = answer.get("x-error-codes")
                if codes is None:
                    out.append(f"| {status} | | {_cell(answer['description'])} (a [watch](#the-watch)) |")
                for code in codes or ():
                    out.append(f"| {status} | `{code}` | {_cell(api.WHEN[code])} |")
            out.append("")
    watch = schemas["Watch"]
    out += ["### The watch", "", "What every successful answer carries.", "", "| field | type | meaning |",
            "| --- | --- | --- |"]
    for name, prop in watch["properties"].items():
        kind = prop["type"] if isinstance(prop["type"], str) else " or ".join(prop["type"])
        meaning = prop.get("description", "")
        if "enum" in prop:
            meaning += ": " + ", ".join(f"`{e}`" for e in prop["enum"])
        out.append(f"| `{name}` | {kind} | {_cell(meaning)} |")
    return "\n".join(out) + "\n"


GENERATORS = {
    "environment": environment_reference,
    "config": config_reference,
    "http-api": http_api_reference,
}


def expand(markdown: str) -> str:
    """The page with each marker replaced by its generated part (an unknown marker is an error)."""
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


def on_page_markdown(markdown: str, **_kwargs: Any) -> str:
    """MkDocs' hook: runs on every page's Markdown before it is rendered."""
    return expand(markdown)
