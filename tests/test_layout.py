"""The shipped packages carry no benchmark code: benchmarks live in `bench/` at the repository root."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("scheduler", "webapp")


def _modules() -> list[Path]:
    return sorted(path for package in SHIPPED for path in (REPO / package).rglob("*.py"))


def _imports(tree: ast.AST) -> list[str]:
    """Every module name an import statement (or importlib.import_module / __import__ with a literal) names;
    `from a import b` counts as `a` and `a.b`, relative imports by their dotted tail."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}".lstrip(".") for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            names.append(node.args[0].value)
    return names


def _is_bench(name: str) -> bool:
    return any(part.startswith("bench") for part in name.split("."))


def test_no_shipped_module_or_package_is_named_bench() -> None:
    named = [str(path.relative_to(REPO)) for package in SHIPPED for path in (REPO / package).rglob("bench*")]
    assert named == []


def test_no_shipped_module_imports_bench() -> None:
    modules = _modules()
    assert len(modules) > 20  # the walk really saw the packages
    offenders = [f"{path.relative_to(REPO)}: {name}" for path in modules
                 for name in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
                 if _is_bench(name)]
    assert offenders == []


def test_the_import_check_sees_every_form() -> None:
    source = """
import bench.city
from bench import solver
from webapp.bureau import bench as b
from . import benchmarks
importlib.import_module("bench.load.rush")
import benchmark_tools
"""
    found = {name for name in _imports(ast.parse(source)) if _is_bench(name)}
    assert found == {"bench.city", "bench", "bench.solver", "webapp.bureau.bench", "benchmarks", "bench.load.rush",
                     "benchmark_tools"}


def test_the_benchmarks_are_not_installed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["scheduler*", "webapp*"]
    assert (REPO / "bench" / "__init__.py").is_file()
