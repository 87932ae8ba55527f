"""Mutation testing of the modules whose decisions the unit tests pin: `python -m tools.mutants`.

A mutant is one small change to a module (an operator, a constant, a table entry); a good test suite fails on
it ("kills" it). The tool is cosmic-ray (cosmic-ray.readthedocs.io): its operators change operators, numbers,
comparisons, booleans and the like anywhere in a module, module level included. Two more operators, defined
here and registered with it as the provider "jobstatus", reach the tables the bot decides by (mutmut 3 mutates
only function bodies): `ReplaceTableValue` turns one value of a dict or set display into the next other value
of the same display (Phase.QUEUED -> Phase.RUNNING, an Outcome letter E -> D, a member of _TERMINAL -> another
member), and `ReplaceString` changes one string constant outside a function ("BLOCKED" -> "XXBLOCKED").

The modules, their tests and the time allowed are in tools/mutants.toml. The mutants run in a copy of the
repository's files in a temporary folder (with ../shared beside it, as tests expect), so the working tree is
never changed; each mutant runs that module's own unit tests (`pytest -x`), one at a time. Results go to
.mutants/<module>.sqlite (cosmic-ray's session format: `cr-report .mutants/bot.domain.durations.sqlite` reads
it). Surviving mutants judged equivalent (no test could tell them apart) are listed in
tools/mutants-equivalent.txt and left out of the score.

    python -m tools.mutants                     # every module in the config
    python -m tools.mutants bot/domain/durations.py    # one
    python -m tools.mutants --sample 60         # a fixed sample of 60 mutants per module (same every run)
    python -m tools.mutants --list              # count the mutants, run nothing
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cosmic_ray.plugins
import parso.python.tree
from cosmic_ray.ast import ast_nodes, get_ast_from_path
from cosmic_ray.ast.ast_query import ASTQuery
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.operators.operator import Example, Operator
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import MutationSpec, TestOutcome, WorkerOutcome, WorkItem

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tools" / "mutants.toml"
EQUIVALENT = ROOT / "tools" / "mutants-equivalent.txt"
PROVIDER = "jobstatus"


def _in_function(node: Any) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type in ("funcdef", "lambdef"):
            return True
        parent = parent.parent
    return False


def _in_annotation(node: Any) -> bool:
    """Whether `node` is part of a type annotation: never evaluated in these modules (each has `from
    __future__ import annotations`, checked in `mutants`), so a mutant there is equivalent by construction."""
    while node.parent is not None:
        parent = node.parent
        if parent.type == "param" and getattr(parent, "annotation", None) is node:
            return True
        if parent.type == "funcdef" and getattr(parent, "annotation", None) is node:
            return True
        # `name: annotation`, as cosmic-ray parses it
        if parent.type == "tfpdef" and parent.children[-1] is node:
            return True
        if parent.type == "annassign" and parent.children[1] is node:
            return True
        node = parent
    return False


class ReplaceTableValue(Operator):
    """One value of a dict display, or one member of a set display, replaced by the next other one of the same
    display: a table row that says another of the table's own answers."""

    @staticmethod
    def _values(node: Any) -> list[Any] | None:
        parent = node.parent
        if (
            parent is None
            or parent.type != "dictorsetmaker"
            or node.type not in ("name", "atom_expr", "number", "string", "factor")
        ):
            return None
        kids = parent.children
        is_dict = any(k.type == "operator" and k.value == ":" for k in kids)
        if is_dict:
            values = [kids[i + 1] for i, k in enumerate(kids) if k.type == "operator" and k.value == ":"]
        else:
            values = [k for k in kids if not (k.type == "operator" and k.value == ",")]
        if node not in values or len({v.get_code().strip() for v in values}) < 2:
            return None
        return values

    def mutation_positions(self, node: Any) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        if self._values(node) is not None:
            yield (node.start_pos, node.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        values = self._values(node)
        assert values is not None
        texts = list(dict.fromkeys(v.get_code().strip() for v in values))
        mine = node.get_code().strip()
        other = texts[(texts.index(mine) + 1) % len(texts)]
        return parso.python.tree.Name(other, node.start_pos, prefix=node.get_first_leaf().prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("T = {'a': X.A, 'b': X.B}", "T = {'a': X.B, 'b': X.B}"),
                Example("S = frozenset({X.A, X.B})", "S = frozenset({X.B, X.B})"))


class ReplaceString(Operator):
    """One string constant outside any function (a table's key, a set's member, a constant) changed, so it no
    longer matches what it stood for. Docstrings and triple-quoted text are left alone."""

    @staticmethod
    def _applies(node: Any) -> bool:
        if node.type != "string" or _in_function(node) or node.parent.type == "simple_stmt":
            return False
        value = node.value.lstrip("rbuRBU")
        return value[:1] in ("'", '"') and not value.startswith(("'''", '"""'))

    def mutation_positions(self, node: Any) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        if self._applies(node):
            yield (node.start_pos, node.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        quote = len(node.value) - len(node.value.lstrip("rbuRBU")) + 1
        return parso.python.tree.String(node.value[:quote] + "XX" + node.value[quote:], node.start_pos,
                                        prefix=node.prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("T = {'a': 1}", "T = {'XXa': 1}"),)


class _Provider:
    """A cosmic-ray operator provider (a mapping from names to Operator classes)."""

    _operators = {op.__name__: op for op in (ReplaceTableValue, ReplaceString)}

    def __iter__(self) -> Iterator[str]:
        return iter(self._operators)

    def __getitem__(self, name: str) -> type[Operator]:
        return self._operators[name]


cosmic_ray.plugins.OPERATOR_PROVIDERS[PROVIDER] = _Provider()


@dataclass
class Target:
    path: str
    tests: list[str]
    conftest: bool = True
    only: list[str] = field(default_factory=list)
    module_level: bool = True

    @property
    def name(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def command(self) -> str:
        args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                "-p", "no:hypothesispytest"]
        if not self.conftest:
            args.append("--noconftest")
        return shlex.join([*args, *self.tests])


def load(config: Path = CONFIG) -> tuple[float, list[Target]]:
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    return float(data["timeout"]), [Target(**m) for m in data["module"]]


def equivalents(path: Path = EQUIVALENT) -> dict[str, str]:
    """`<module path>:<line>:<operator>:<the line mutated, stripped>` -> why it is equivalent (the file's
    lines are `<key>  # why: <reason>`)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, why = line.partition("  # why: ")
            out[key.strip()] = why.strip()
    return out


def mutants(target: Target, root: Path) -> list[MutationSpec]:
    """Every mutation of the module (`only`: in those functions, or at module level unless `module_level`
    is false)."""
    module = root / target.path
    if "from __future__ import annotations" not in module.read_text(encoding="utf-8"):
        raise SystemExit(f"{target.path}: annotations are evaluated there; mutants in them would count")
    tree = get_ast_from_path(module)
    out = []
    for op_name in cosmic_ray.plugins.operator_names():
        op_class = cosmic_ray.plugins.get_operator(op_name)
        if op_class.arguments():
            continue  # operators that need arguments are not configured here
        op = op_class()
        positions = (
            (node, start, end) for node in ast_nodes(tree) for start, end in op.mutation_positions(node)
        )
        for occurrence, (node, start, end) in enumerate(positions):
            if _in_annotation(node):
                continue
            where = ASTQuery(node).get_definition_name()
            if target.only and where is not None and where not in target.only:
                continue
            if where is None and not target.module_level:
                continue
            out.append(
                MutationSpec(
                    module_path=target.path,
                    operator_name=op_name,
                    operator_args={},
                    occurrence=occurrence,
                    start_pos=start,
                    end_pos=end,
                    definition_name=where,
                )
            )
    return out


@contextlib.contextmanager
def copy_of_repository() -> Iterator[Path]:
    """The repository's tracked and new files in a temporary folder, ../shared linked beside it."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    with tempfile.TemporaryDirectory(prefix="jobstatus-mutants-") as tmp:
        repo = Path(tmp) / "repo"
        for name in filter(None, files):
            source = ROOT / name
            if source.is_file():
                (repo / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, repo / name)
        shared = (ROOT / ".." / "shared").resolve()
        if shared.exists():
            (Path(tmp) / "shared").symlink_to(shared)
        yield repo


def _line(repo: Path, spec: MutationSpec) -> str:
    return (repo / spec.module_path).read_text(encoding="utf-8").splitlines()[spec.start_pos[0] - 1].strip()


def run(target: Target, timeout: float, sample: int | None, repo: Path) -> tuple[int, int, list[str]]:
    """Run the module's mutants; (killed, counted, survivors not listed as equivalent)."""
    specs = mutants(target, repo)
    if sample is not None and sample < len(specs):
        specs = random.Random(target.path).sample(specs, sample)
    known = equivalents()
    (ROOT / ".mutants").mkdir(exist_ok=True)
    session = ROOT / ".mutants" / f"{target.name}.sqlite"
    session.unlink(missing_ok=True)
    killed = counted = 0
    survivors = []
    with use_db(str(session), WorkDB.Mode.create) as db:
        for spec in specs:
            item = WorkItem.single(job_id=uuid.uuid4().hex, mutation=spec)
            db.add_work_item(item)
            result = mutate_and_test([spec], target.command(), timeout)
            db.set_result(item.job_id, result)
            if result.worker_outcome is WorkerOutcome.NO_TEST:
                continue
            key = f"{spec.module_path}:{spec.start_pos[0]}:{spec.operator_name}:{_line(repo, spec)}"
            if result.test_outcome is TestOutcome.SURVIVED and key in known:
                continue  # equivalent: no test can kill it
            counted += 1
            if result.test_outcome is TestOutcome.SURVIVED:
                diff = [d for d in (result.diff or "").splitlines() if d.startswith(("-", "+"))
                        and not d.startswith(("---", "+++"))]
                survivors.append(f"{key}\n      " + "\n      ".join(diff))
            else:
                killed += 1  # failed, or broke the tests' run (incompetent): either way told apart
            print(f"\r{target.path}: {counted} run, {killed} killed", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return killed, counted, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths from tools/mutants.toml (default: all)")
    parser.add_argument("--sample", type=int, help="run a fixed sample of this many mutants per module")
    parser.add_argument("--list", action="store_true", help="count each module's mutants and run nothing")
    parser.add_argument("--config", type=Path, default=CONFIG, help="another config (e.g. other tests)")
    args = parser.parse_args(argv)
    timeout, targets = load(args.config.resolve())
    unknown = set(args.modules) - {t.path for t in targets}
    if unknown:
        parser.error(f"not in {args.config}: {', '.join(sorted(unknown))}")
    chosen = [t for t in targets if not args.modules or t.path in args.modules]
    with copy_of_repository() as repo:
        os.chdir(repo)  # cosmic-ray mutates and tests relative to the working directory: the copy's
        if args.list:
            for t in chosen:
                print(f"{t.path}: {len(mutants(t, repo))} mutants")
            return 0
        for t in chosen:
            killed, counted, survivors = run(t, timeout, args.sample, repo)
            score = 100.0 * killed / counted if counted else 100.0
            print(f"{t.path}: {killed}/{counted} killed ({score:.1f} %), {len(survivors)} survived")
            for s in survivors:
                print(f"  survived: {s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
