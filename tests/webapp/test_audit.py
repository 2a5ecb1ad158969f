"""The audit trail speaks one vocabulary: `area.verb` names from `AuditAction`, old rows renamed by a migration."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from webapp import create_app
from webapp.audit import AuditAction, record
from webapp.extensions import MIGRATIONS_DIR, db


def test_every_action_reads_area_verb() -> None:
    for action in AuditAction:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", action.value), action


def test_an_unlisted_action_is_refused(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(ValueError):
            record("care_request_submitted")
        assert record(AuditAction.REQUEST_SUBMIT).action == "request.submit"
        db.session.rollback()


def _literal_actions(node: ast.expr) -> list[str]:
    """The names a `record(...)` first argument can take: a string, either side of `a if c else b`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literal_actions(node.body) + _literal_actions(node.orelse)
    return []


def test_every_recorded_action_in_the_code_is_listed() -> None:
    """Literal names passed to `record(...)` anywhere in webapp/ exist in `AuditAction` (f-strings checked below)."""
    root = Path(__file__).resolve().parents[2] / "webapp"
    listed = {action.value for action in AuditAction}
    seen = 0
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name != "record":
                continue
            for action in _literal_actions(node.args[0]):
                seen += 1
                assert action in listed, f"{path.name}:{node.lineno}: {action}"
    assert seen > 20
    assert {f"{kind}.import" for kind in ("pupils", "teachers", "sessions")} <= listed
    assert {f"window.{verb}" for verb in ("open", "close")} <= listed


def test_migration_renames_stored_actions_both_ways(tmp_path: Path) -> None:
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'audit.db'}"})
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="4e1f9c2b7a30")
        with db.engine.begin() as connection:
            insert = text("INSERT INTO audit_log (at, action, target) VALUES (CURRENT_TIMESTAMP, :a, '')")
            for action in ("login", "care_request_submitted", "run.publish"):
                connection.execute(insert, {"a": action})
        upgrade(directory=MIGRATIONS_DIR, revision="9b3d5e7f1a20")
        with db.engine.connect() as connection:
            stored = sorted(connection.execute(text("SELECT action FROM audit_log")).scalars())
        assert stored == ["auth.login", "request.submit", "run.publish"]
        downgrade(directory=MIGRATIONS_DIR, revision="4e1f9c2b7a30")
        with db.engine.connect() as connection:
            stored = sorted(connection.execute(text("SELECT action FROM audit_log")).scalars())
        assert stored == ["care_request_submitted", "login", "run.publish"]
        db.engine.dispose()
