"""The app factory: configuration, database settings, blueprints, error pages and catalogues."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from webapp import create_app, normalise_database_url
from webapp.extensions import db
from webapp.models import User


def test_test_config_is_used(app: Flask) -> None:
    assert app.testing
    assert not create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"}).testing


def test_sqlite_pragmas_are_set(app: Flask) -> None:
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_database_url_env_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example/care")
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://someone@db.example/care"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert create_app({"SECRET_KEY": "x"}).config["SQLALCHEMY_DATABASE_URI"].endswith("env.db")


@pytest.mark.parametrize("url, expected", [
    ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_normalise_database_url(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_secret_key_file_created_once_with_mode_0600(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    import webapp

    key_file = tmp_path / "secret_key"
    first = webapp._secret_key(str(tmp_path))
    assert len(first) == 64
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert webapp._secret_key(str(tmp_path)) == first
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert webapp._secret_key(str(tmp_path)) == "from-env"


def test_production_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://", "DEBUG": True,
                      "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/6"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.debug is False
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_anonymous_index_redirects_to_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.location.endswith("/login")


def test_404_page_is_translated_without_traceback(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "页面不存在" in body and "Traceback" not in body


def test_500_page_hides_the_error(tmp_path: Path) -> None:
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'e.db'}"})

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "出错了" in body and "secret internals" not in body


def test_init_db_is_idempotent_and_matches_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from webapp.commands import init_db

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}"})
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    with app.app_context():
        init_db()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
        db.engine.dispose()


def test_create_user_command(app: Flask, runner: FlaskCliRunner) -> None:
    from tests.conftest import make_school

    with app.app_context():
        make_school("KM-CLI-0001")
    result = runner.invoke(args=["create-user", "--role", "school_admin", "--username", "head",
                                 "--school", "KM-CLI-0001"], input="long-enough-pass\nlong-enough-pass\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["create-user", "--role", "school_admin", "--username", "x",
                                 "--school", "NOPE"], input="long-enough-pass\nlong-enough-pass\n")
    assert result.exit_code != 0 and "no school" in result.output
    result = runner.invoke(args=["create-user", "--role", "bureau", "--username", "weak"],
                           input="12345678\n12345678\n")
    assert result.exit_code != 0
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "head"))
        assert user is not None and user.role == "school_admin" and user.school is not None
        assert user.school.code == "KM-CLI-0001"


def test_demo_logins_without_demo_data(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["demo-logins"])
    assert result.exit_code == 0 and "seed-demo" in result.output


def test_translation_catalogues_are_complete_and_compiled() -> None:
    from webapp.i18n import problems

    assert problems() == []


def test_postgresql_smoke(request: pytest.FixtureRequest) -> None:
    """Create the schema in a throwaway PostgreSQL schema, write and read a user."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in url else "?"
    app = create_app({"SECRET_KEY": "x",
                      "SQLALCHEMY_DATABASE_URI": f"{url}{separator}options=-csearch_path%3D{schema}"})
    with app.app_context():
        try:
            with db.engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # noqa: BLE001 - any connection failure means the service is unreachable
            if os.environ.get("REQUIRE_SERVICES") == "1":
                pytest.fail(f"PostgreSQL unreachable at TEST_DATABASE_URL: {exc}")
            pytest.skip(f"PostgreSQL unreachable: {exc}")
        try:
            db.create_all()
            db.session.add(User(role="bureau", username="pg-smoke", password_hash="x", display_name="市教育局"))
            db.session.commit()
            found = db.session.scalar(select(User).where(User.username == "pg-smoke"))
            assert found is not None and found.display_name == "市教育局" and found.session_version == 1
            assert db.session.execute(text("SELECT current_schema()")).scalar() == schema
        finally:
            db.session.remove()
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            db.engine.dispose()


