"""Factories for the webapp tests: the test school, a published run and a client signed in per role.

The app fixtures (`app`, `app_no_csrf`, `client`, `runner`) come from `tests/conftest.py`; plain builders the
tests call themselves live in `tests/webapp/factories.py`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.webapp.factories import SchoolIds, create_user, publish_for, pupil_id, sign_in, term_of, the_school
from webapp import create_app
from webapp.extensions import db
from webapp.models import Pupil, User


@pytest.fixture
def school(app: Flask) -> SchoolIds:
    """The test school with its term, periods, sessions, teachers and pupils P001–P006 (`make_school`)."""
    with app.app_context():
        made = the_school()
        return SchoolIds(made.id, made.code, term_of(made.code).id)


@pytest.fixture
def published_run(app: Flask, school: SchoolIds) -> int:
    """The id of the test term's published run: P001 seated on Monday and second on Tuesday's waitlist."""
    with app.app_context():
        return publish_for(pupil_id("P001", school.code))


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> Callable[..., User]:
    """`signed_in("parent")`, `signed_in("school_admin")`, `signed_in("bureau", district=...)`: create a user and
    sign `client` in as them.

    The test school is made on first use; the parent is linked to pupil P001. Sign-in goes through the real
    login form with a CSRF token.
    """

    def sign_in_as(role: str, **kwargs: Any) -> User:
        with app.app_context():
            school = the_school()
            if role == "parent" and "pupil" not in kwargs:
                kwargs["pupil"] = db.session.scalars(
                    select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001")).one()
            user = create_user(role, school=kwargs.pop("school", school), **kwargs)
            login_name = user.phone or user.username or ""
            user_id = user.id
        sign_in(client, login_name)
        with app.app_context():
            found = db.session.get(User, user_id)
            assert found is not None
            return found

    return sign_in_as


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
