"""The API's route modules share `webapp.api.common` by its public names, never each other's private helpers."""

from __future__ import annotations

import ast
from pathlib import Path

WEBAPP = Path(__file__).resolve().parents[3] / "webapp"


def _private_api_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{node.module}.{alias.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("webapp.api")
            for alias in node.names if alias.name.startswith("_")]


def test_no_module_imports_a_private_api_helper() -> None:
    found = {str(path.relative_to(WEBAPP)): names for path in sorted(WEBAPP.rglob("*.py"))
             if (names := _private_api_imports(path))}
    assert found == {}


def test_the_daily_api_builds_on_the_common_module() -> None:
    tree = ast.parse((WEBAPP / "daily" / "api.py").read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "webapp.api.common" in modules and "webapp.api.routes" not in modules
