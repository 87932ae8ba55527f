"""The product does not import the stand-ins: no module of bot/ outside bot/offline/ imports bot.offline, except
the `demo` command, lazily, inside its function; and importing the app loads none of it."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
OFFLINE = "bot.offline"
# The one place allowed: bot/cli.py's demo command, inside its function.
ALLOWED = {("bot.cli", "_demo")}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> list[Path]:
    return sorted(p for p in BOT.rglob("*.py") if BOT / "offline" not in p.parents)


def imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The module names one node imports: `import a.b`, `from a import b` (a and a.b: b may be a module),
    relative forms resolved against `module`, and importlib.import_module / __import__ of a constant."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            yield node.args[0].value


def offline_imports(path: Path, root: Path = ROOT) -> list[tuple[str, str | None, int]]:
    """(module, enclosing top-level function or None, line) for every statement of `path` that imports
    bot.offline or a module in it, in line order."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for top in tree.body:
        function = top.name if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else None
        for node in ast.walk(top):
            names = imported(node, module, path.name == "__init__.py")
            if any(name == OFFLINE or name.startswith(OFFLINE + ".") for name in names):
                found.append((module, function, getattr(node, "lineno", 0)))
    return sorted(found, key=lambda hit: hit[2])


def test_no_product_module_imports_the_stand_ins() -> None:
    modules = product_modules()
    assert {module_name(p) for p in modules} >= {"bot.app", "bot.cli", "bot.support.config"}, "the walk finds the product"
    found = [hit for path in modules for hit in offline_imports(path)]
    assert [hit for hit in found if (hit[0], hit[1]) not in ALLOWED] == []
    assert {(m, f) for m, f, _ in found} == ALLOWED, "the demo command's lazy import is seen where it is"


def test_the_walk_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "bot" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(
        "import bot.offline.slack\n"
        "from bot import offline\n"
        "from .offline.vendors import core\n"
        "import importlib\n"
        "def f():\n"
        "    importlib.import_module('bot.offline.demo')\n"
        "    from bot.offline.setup import seed_jobs\n"
        "import bot.support.config, bot.offlineish\n",
        encoding="utf-8",
    )
    hits = offline_imports(sample, root=tmp_path)
    assert [(function, line) for _, function, line in hits] == [
        (None, 1), (None, 2), (None, 3), ("f", 6), ("f", 7)]


def test_importing_the_app_loads_no_stand_in() -> None:
    code = ("import sys, bot.app, bot.cli\n"
            f"loaded = sorted(m for m in sys.modules if m == {OFFLINE!r} or m.startswith({OFFLINE + '.'!r}))\n"
            "print(loaded)\n"
            "sys.exit(1 if loaded else 0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "[]"
