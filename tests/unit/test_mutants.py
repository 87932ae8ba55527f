"""The mutation-testing command's config (tools/mutants.toml) names modules and tests that exist, and its
two table operators make the one-token changes they say (the command itself is too slow for CI)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cosmic_ray.mutating import mutate_code

from tools import mutants

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", mutants.load()[1], ids=lambda t: t.path)
def test_each_module_and_its_tests_exist_and_the_functions_it_names_are_in_it(target: mutants.Target) -> None:
    module = ROOT / target.path
    assert module.is_file() and target.tests
    source = module.read_text(encoding="utf-8")
    assert "from __future__ import annotations" in source  # annotations are skipped as never evaluated
    defined = {n.name for n in ast.walk(ast.parse(source))
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert set(target.only) <= defined
    for test in target.tests:
        assert (ROOT / test).is_file(), test
    assert mutants.mutants(target, ROOT)  # it has mutants to run


def test_every_equivalent_mutant_listed_names_a_configured_module_and_says_why() -> None:
    paths = {t.path for t in mutants.load()[1]}
    for key, why in mutants.equivalents().items():
        path, line, operator, _code = key.split(":", 3)
        assert path in paths and line.isdigit() and operator.startswith(("core/", "jobstatus/")), key
        assert why, key


def test_the_table_operators_change_one_entry_to_another_of_the_same_table() -> None:
    table = mutants.ReplaceTableValue()
    code = "T = {'a': X.A, 'b': X.B, 'c': X.A}\n"
    assert mutate_code(code, table, 0) == "T = {'a': X.B, 'b': X.B, 'c': X.A}\n"
    assert mutate_code(code, table, 1) == "T = {'a': X.A, 'b': X.A, 'c': X.A}\n"
    assert mutate_code("S = frozenset({X.A, X.B})\n", table, 1) == "S = frozenset({X.A, X.A})\n"
    assert mutate_code("T = {'a': X.A}\n", table, 0) is None  # one answer only: nothing to swap
    string = mutants.ReplaceString()
    assert mutate_code("W = frozenset({'HOLD'})\n", string, 0) == "W = frozenset({'XXHOLD'})\n"
    assert mutate_code('def f():\n    return "a"\n', string, 0) is None  # inside a function: not this one's
    assert mutate_code('"""Doc."""\n', string, 0) is None
