"""The product's import graph. The product does not import the stand-ins: no module of bot/ outside
bot/offline/ imports bot.offline, except the `demo` command, lazily, inside its function; importing the app
loads none of it. Every product module sits in one layer of LAYERS and imports only its own layer and those
below it (an import inside a function counts as much as one at the top: hiding an import does not change where
the code lives), and no modules import each other round in a cycle."""

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


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[list[str], int]]:
    """(the names one statement or call imports, its line) for every import of `path`, at any depth."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [(list(imported(node, module, path.name == "__init__.py")), getattr(node, "lineno", 0))
             for node in ast.walk(tree)]
    return [(names, line) for names, line in found if names]


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
    found_modules = {module_name(p) for p in modules}
    assert found_modules >= {"bot.app", "bot.cli", "bot.support.config"}, "the walk finds the product"
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
            "loaded = sorted(m for m in sys.modules\n"
            f"                if m == {OFFLINE!r} or m.startswith({OFFLINE + '.'!r}))\n"
            "print(loaded)\n"
            "sys.exit(1 if loaded else 0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "[]"


# The layers, from the top down: a module may import its own layer and the layers below it, never one above.
# The folders' __init__.py docstrings say the same in words. bot.offline (the stand-ins) is apart: it may use
# anything, and nothing of the product imports it (the tests above).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("the command", ("bot.__main__", "bot.cli")),
    ("the wiring", ("bot.app",)),
    ("ways in", ("bot.inbound",)),
    ("operations", ("bot.operations",)),
    ("engine", ("bot.engine",)),
    ("rendering", ("bot.rendering",)),
    ("adapters", ("bot.backends", "bot.slack", "bot.metrics")),
    ("store", ("bot.store",)),
    ("support", ("bot.support",)),
    ("domain", ("bot.domain",)),
]


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module` (0 is the top), or None for a module no layer holds."""
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """Module → {product module it imports: the first line that does}, for every product module under `root`.
    A name is resolved to the longest product module it names; `from a import b` imports a.b when that is a
    module and a itself only for the names that are not (`from bot.store import Store` is bot.store, `from bot
    import store` is bot.store and not bot). The package `bot` itself and third parties drop out."""
    bot = root / "bot"
    paths = sorted(p for p in bot.rglob("*.py") if bot / "offline" not in p.parents)
    modules = {module_name(p, root): p for p in paths}
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        found: dict[str, int] = {}
        for names, line in imports_of(path, root):
            base, *members = names if len(names) > 1 and names[1].startswith(names[0] + ".") else ("", *names)
            named = [m for m in members if m in modules]
            if any(m not in modules for m in members):
                named.append(base)
            for name in named:
                parts = name.split(".")
                target = next((".".join(parts[:n]) for n in range(len(parts), 1, -1)
                               if ".".join(parts[:n]) in modules), None)
                if target is not None and target != module:
                    found.setdefault(target, line)
        edges[module] = found
    return edges


def upward_imports(edges: dict[str, dict[str, int]]) -> list[str]:
    """Each import that runs back up the layers, in words that name it."""
    out = []
    for module, targets in sorted(edges.items()):
        here = layer_of(module)
        for target, line in sorted(targets.items()):
            there = layer_of(target)
            if here is not None and there is not None and there < here:
                out.append(f"{module} (line {line}) imports {target}: {LAYERS[here][0]} may not import "
                           f"{LAYERS[there][0]}, a layer above it")
    return out


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def test_every_product_module_is_in_a_layer() -> None:
    edges = graph()
    expected = {"bot.app", "bot.cli", "bot.store.models", "bot.domain.states"}
    assert expected <= set(edges), "the walk finds the product"
    assert [m for m in sorted(edges) if m != "bot" and layer_of(m) is None] == []


def test_no_import_runs_back_up_the_layers() -> None:
    assert upward_imports(graph()) == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    assert cycles(graph()) == []


def test_the_layer_check_names_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    files = {
        "bot/__init__.py": "",
        "bot/domain/__init__.py": "",
        "bot/domain/states.py": "def f():\n    from bot.store import models\n",  # lazily, still upward
        "bot/store/__init__.py": "",
        "bot/store/models.py": "from bot.domain import states\nfrom bot.store.outbox import owe\n",
        "bot/store/outbox.py": "import bot.store.models\nimport httpx\n",
        "bot/engine/__init__.py": "",
        "bot/engine/poller.py": "from bot import store\nfrom bot.domain.states import Phase\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    edges = graph(tmp_path)
    assert edges["bot.engine.poller"] == {"bot.store": 1, "bot.domain.states": 2}
    assert upward_imports(edges) == [
        "bot.domain.states (line 2) imports bot.store.models: domain may not import store, a layer above it"]
    assert cycles(edges) == [["bot.domain.states", "bot.store.models", "bot.store.outbox"]]
