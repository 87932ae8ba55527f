"""Every module path written as text names a module that exists: a dotted name in a string (a monkeypatch
target such as "bot.inbound.front.BODY_DEADLINE", a logger's name) and a file path `bot/....py` in the code's
comments and docstrings, the README and docs/. Imports are checked by Python and mypy; these are not, so after
a move an old path would otherwise patch nothing, or send a reader to a file that is gone."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"bot(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
# Dotted names that are no module path: file names, and a logger the bot names under its own module's package
# (bot/slack/socket.py gives slack_sdk's Socket Mode client its own logger, bot.slack.socket_mode_client).
NOT_PATHS = {"bot.db", "bot.log", "bot.slack.socket_mode_client"}
FILE = re.compile(r"(?<![\w/.])bot/(?:[a-z_]+/)*[a-z_]+\.py\b")


def modules(root: Path = ROOT) -> set[str]:
    out = set()
    for path in (root / "bot").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


@functools.cache
def top_level_names(module: str, root: Path = ROOT) -> set[str]:
    """What a module defines or imports at its top level (the names a dotted path may go on with)."""
    base = root.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def dead_dotted(text: str, known: set[str], root: Path = ROOT) -> list[str]:
    """Each dotted `bot....` name in `text` whose longest module prefix does not go on with a name it has."""
    out = []
    for name in DOTTED.findall(text):
        if name in NOT_PATHS:
            continue
        parts = name.split(".")
        n = max(k for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in known | {"bot"})
        if n < len(parts) and parts[n] not in top_level_names(".".join(parts[:n]), root) | {
                p.split(".")[n] for p in known if p.startswith(".".join(parts[:n]) + ".")}:
            out.append(name)
    return out


def string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    texts = [node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return [text for text in texts if DOTTED.fullmatch(text)]


def test_dotted_module_paths_in_strings_exist() -> None:
    known = modules()
    found = {}
    for folder in ("bot", "tests", "bench", "docs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == Path(__file__).resolve():
                continue
            for text in string_constants(path):
                for dead in dead_dotted(text, known):
                    found[dead] = str(path.relative_to(ROOT))
    assert found == {}


def test_file_paths_in_code_and_docs_exist() -> None:
    texts = [*(ROOT / "bot").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
             ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    here = Path(__file__).resolve()
    missing = {m: str(p.relative_to(ROOT)) for p in texts if p.exists() and p.resolve() != here
               for m in FILE.findall(p.read_text(encoding="utf-8")) if not (ROOT / m).exists()}
    assert missing == {}


def test_an_old_path_is_caught(tmp_path: Path) -> None:
    (tmp_path / "bot" / "inbound").mkdir(parents=True)
    (tmp_path / "bot" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "bot" / "inbound" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "bot" / "inbound" / "front.py").write_text("BODY_DEADLINE = 4.0\n", encoding="utf-8")
    known = modules(tmp_path)
    assert dead_dotted("bot.inbound.front.BODY_DEADLINE", known, tmp_path) == []
    assert dead_dotted("bot.front.BODY_DEADLINE", known, tmp_path) == ["bot.front.BODY_DEADLINE"]
    gone = "bot.inbound.front.HEADER_DEADLINE"  # the module is right, the name it holds is not
    assert dead_dotted(gone, known, tmp_path) == [gone]
