"""The core stays pure: no web framework, ORM or web-app import anywhere in `scheduler/`."""

from __future__ import annotations

import ast
from pathlib import Path

import scheduler

FORBIDDEN = {"flask", "flask_sqlalchemy", "flask_wtf", "flask_login", "flask_babel", "sqlalchemy", "wtforms",
             "webapp", "celery"}


def test_scheduler_imports_no_web_module() -> None:
    root = Path(scheduler.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(root.rglob("*.py"))) >= 2
