"""Fixtures for the allocation tests: the app on PostgreSQL in a schema of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def pg_app() -> Iterator[Flask]:
    """The app on `TEST_DATABASE_URL` in a fresh schema (dropped afterwards), with a pool for 50 threads.

    Skipped, saying why, when TEST_DATABASE_URL is unset; failed instead when REQUIRE_SERVICES=1.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
        print("TEST_DATABASE_URL is not set: skipping the PostgreSQL test")
        pytest.skip("TEST_DATABASE_URL is not set")
    schema = f"alloc_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in url else "?"
    scoped = f"{url}{separator}options=-csearch_path%3D{schema}"
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": scoped,
                      "RATELIMIT_ENABLED": False,
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 45, "pool_timeout": 60}})
    with app.app_context():
        try:
            with db.engine.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # the server is down or refuses us
            pytest.fail(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            with db.engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            db.engine.dispose()
