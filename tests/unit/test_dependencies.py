"""Every library the code imports is declared in pyproject.toml: the bot's in `dependencies` (psycopg,
which only a PostgreSQL database needs, in the `postgres` extra), the tests' and the benchmark's there or in
the `test` extra. A library that arrives only as another's dependency (pydantic under sqlmodel, multidict
under aiohttp) would vanish, or change major version, the day that library stops needing it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"bot", "bench", "tests"}


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares it: lower case, runs of `-`, `_`, `.` as one `-`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    """The distribution names of requirement strings (`httpx[http2]>=0.27,<1` is httpx)."""
    return {normalized(m.group(0)) for r in requirements if (m := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r))}


def imported_top_levels(folder: Path, root: Path = ROOT) -> dict[str, str]:
    """Each third-party top-level module imported under `folder` (at any depth, lazily too), and a file that
    imports it."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN:
                    found.setdefault(top, str(path.relative_to(root)))
    return found


def undeclared(folder: Path, allowed: set[str], root: Path = ROOT) -> list[str]:
    """Each imported library whose distribution `allowed` does not name, with a file that imports it."""
    distributions = importlib.metadata.packages_distributions()
    out = []
    for top, where in sorted(imported_top_levels(folder, root).items()):
        names = {normalized(d) for d in distributions.get(top, [top])}
        if not names & allowed:
            out.append(f"{top} (imported by {where}; distribution {', '.join(sorted(names))})")
    return out


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = declared(PROJECT["dependencies"])
EXTRAS = {name: declared(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}


def test_the_bot_imports_only_declared_libraries() -> None:
    assert {"slack-bolt", "httpx", "pyyaml"} <= RUNTIME, "the requirement strings are read"
    assert undeclared(ROOT / "bot", RUNTIME | EXTRAS["postgres"]) == []


def test_the_tests_and_the_benchmark_import_only_declared_libraries() -> None:
    allowed = RUNTIME | EXTRAS["postgres"] | EXTRAS["test"]
    assert undeclared(ROOT / "tests", allowed) == []
    assert undeclared(ROOT / "bench", allowed) == []


def test_an_undeclared_import_is_named(tmp_path: Path) -> None:
    source = "import json\nimport yaml\n\n\ndef f():\n    from sqlalchemy.orm import Session\n"
    (tmp_path / "x.py").write_text(source, encoding="utf-8")
    assert undeclared(tmp_path, {"pyyaml"}, root=tmp_path) == [
        "sqlalchemy (imported by x.py; distribution sqlalchemy)"]
    assert undeclared(tmp_path, {"pyyaml", "sqlalchemy"}, root=tmp_path) == []
