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


COMPUTING = "正在计算建议，完成后将显示在本页。"


def test_the_computing_notice_shows_only_while_advice_is_pending(app: Flask, signed_in: Callable[..., User],
                                                                client: FlaskClient) -> None:
    """Queued or running: the page says advice is being computed (and reloads itself). Computed inline, the
    request that started it lands on the finished advice, with no such notice left behind."""
    signed_in("bureau")
    school_id, advice_id = _pending(app)
    page = client.get(f"/bureau/advice/{school_id}").get_data(as_text=True)
    assert page.count(COMPUTING) == 1 and 'id="advice-pending"' in page
    with app.app_context():
        row = db.session.get(CapacityAdvice, advice_id)
        assert row is not None
        row.state = RunState.RUNNING
        db.session.commit()
    assert COMPUTING in client.get(f"/bureau/advice/{school_id}").get_data(as_text=True)
    with app.app_context():
        row = db.session.get(CapacityAdvice, advice_id)
        assert row is not None
        row.state = RunState.FAILED
        db.session.commit()
    page = client.get(f"/bureau/advice/{school_id}").get_data(as_text=True)
    assert COMPUTING not in page and 'id="advice-pending"' not in page

    app.config.update(JOBS_INLINE=True, BUREAU_ADVICE_TIME_LIMIT=5)
    done = post_form(client, f"/bureau/advice/{school_id}/compute", token_from=f"/bureau/advice/{school_id}",
                     follow_redirects=True)
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "最新建议" in page
    assert COMPUTING not in page and 'id="advice-pending"' not in page
    with app.app_context():
        newest = db.session.scalar(select(CapacityAdvice).order_by(CapacityAdvice.id.desc()))
        assert newest is not None and newest.state == RunState.DONE
