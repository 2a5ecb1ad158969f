"""Capacity advice queues at most one computation per term: a second request joins the pending one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.webapp.factories import post_form
from webapp.extensions import db
from webapp.jobs import start_advice
from webapp.models import CapacityAdvice, RunState, School, Term, User


def _pending(app: Flask) -> tuple[int, int]:
    """A school whose term has advice queued already: (school id, advice id)."""
    with app.app_context():
        term = db.session.scalar(select(Term))
        assert term is not None
        row = CapacityAdvice(term_id=term.id, state=RunState.QUEUED)
        db.session.add(row)
        db.session.commit()
        return term.school_id, row.id


def test_a_second_request_joins_the_pending_advice(app: Flask, signed_in: Callable[..., User],
                                                   client: FlaskClient) -> None:
    signed_in("bureau")
    school_id, advice_id = _pending(app)
    for _ in range(10):
        response = post_form(client, f"/bureau/advice/{school_id}/compute", token_from=f"/bureau/advice/{school_id}",
                             follow_redirects=True)
        assert response.status_code == 200
        assert "已经在计算" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CapacityAdvice)) == 1
        term = db.session.scalar(select(Term).where(Term.school_id == school_id))
        assert term is not None
        row, started = start_advice(term, None)
        assert (row.id, started) == (advice_id, False)


def test_the_database_refuses_two_pending_rows_for_one_term(app: Flask, signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    _pending(app)
    with app.app_context():
        term_id = db.session.scalar(select(Term.id))
        db.session.add(CapacityAdvice(term_id=term_id, state=RunState.RUNNING))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(CapacityAdvice(term_id=term_id, state=RunState.DONE))  # finished rows are history
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(School)) == 1
