"""Priority groups become the solver's weights: the highest unexpired tag, else the pupil's own level."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from scheduler.solve import SolverConfig, solve
from scheduler.validation import validate
from tests.webapp.factories import empty_schema_app, pupil, request, session, small_term, teacher
from webapp import create_app
from webapp.extensions import db
from webapp.models import PriorityGroup, PriorityTag, Pupil, Term
from webapp.services import effective_weights, term_to_instance

TODAY = date(2026, 10, 15)


def _term() -> Term:
    """Three pupils asking for Monday P1, where one session seats only one; P003 is on level 2 (weight 4)."""
    return small_term([session("S1", capacity=1)], [teacher("T1", [(1, "P1")])],
                      [pupil("P001"), pupil("P002"), pupil("P003", priority=2)],
                      [request("P001"), request("P002"), request("P003")])


def _group(name: str, weight: int, active: bool = True) -> PriorityGroup:
    group = PriorityGroup(name_zh=name, name_en=f"group {name}", weight=weight, active=active)
    db.session.add(group)
    db.session.flush()
    return group


def _tag(number: str, group: PriorityGroup, expires_on: date) -> None:
    found = db.session.scalar(select(Pupil).where(Pupil.number == number))
    assert found is not None
    db.session.add(PriorityTag(pupil_id=found.id, group_id=group.id, note="证明已查看", expires_on=expires_on))
    db.session.flush()


def _weights(term: Term, today: date = TODAY) -> dict[str, int]:
    pupils = db.session.scalars(select(Pupil).where(Pupil.school_id == term.school_id)).all()
    by_id = effective_weights(term, pupils, today)
    return {p.number: by_id[p.id] for p in pupils}


def test_untagged_pupils_keep_their_level_weight(app: Flask) -> None:
    with app.app_context():
        term = _term()
        assert _weights(term) == {"P001": 1, "P002": 1, "P003": 4}


def test_highest_counting_tag_wins_and_replaces_the_level(app: Flask) -> None:
    with app.app_context():
        term = _term()
        special, working = _group("特殊教育需要", 8), _group("双职工", 2)
        _tag("P001", special, date(2027, 1, 31))
        _tag("P001", working, date(2027, 1, 31))
        _tag("P002", working, TODAY)  # the expiry day itself still counts
        _tag("P003", working, date(2027, 1, 31))  # a tag is the pupil's weight, even below their old level
        assert _weights(term) == {"P001": 8, "P002": 2, "P003": 2}


def test_expired_tags_and_groups_out_of_use_stop_counting(app: Flask) -> None:
    with app.app_context():
        term = _term()
        _tag("P001", _group("留守儿童", 3), date(2026, 10, 14))
        _tag("P002", _group("停用组", 6, active=False), date(2027, 1, 31))
        assert _weights(term) == {"P001": 1, "P002": 1, "P003": 4}
        assert _weights(term, date(2026, 10, 14))["P001"] == 3


def test_the_frozen_app_clock_decides_expiry(app: Flask) -> None:
    with app.app_context():
        term = _term()
        _tag("P001", _group("留守儿童", 3), date(2026, 10, 14))
        app.config["NOW"] = datetime(2026, 10, 14, 15, 59)  # 23:59 in Kunming: the last day
        assert term_to_instance(term).weight(_domain_pupil(term, "P001")) == 3
        app.config["NOW"] = datetime(2026, 10, 14, 16, 0)  # midnight in Kunming: the tag has ended
        assert term_to_instance(term).weight(_domain_pupil(term, "P001")) == 1


def _domain_pupil(term: Term, number: str):  # type: ignore[no-untyped-def]
    return next(p for p in term_to_instance(term).pupils if p.id == number)


def test_the_solver_instance_carries_the_weights_and_the_seat_follows_them(app: Flask) -> None:
    with app.app_context():
        term = _term()
        _tag("P001", _group("建档立卡/低保家庭", 5), date(2027, 1, 31))
        app.config["NOW"] = datetime(2026, 10, 15, 2, 0)
        instance = term_to_instance(term)
        assert {p.id: instance.weight(p) for p in instance.pupils} == {"P001": 5, "P002": 1, "P003": 4}
        assert instance.priority_weights[0] == 1  # level 0 stays the default
        solution = solve(instance, SolverConfig(time_limit=10))
        assert validate(instance, solution).ok
        assert [a.pupil for a in solution.assignments] == ["P001"]


def test_the_waitlist_orders_by_the_same_weights(app: Flask) -> None:
    from tests.webapp.factories import publish
    from webapp.allocation.waitlist import waitlist

    with app.app_context():
        app.config["NOW"] = datetime(2026, 10, 15, 2, 0)
        term = _term()
        group = _group("特殊教育需要", 9)
        _tag("P002", group, date(2027, 1, 31))
        publish(term, [("P001", "S1")], [("T1", "S1")])
        assert [(e.pupil.number, e.weight) for e in waitlist(term)] == [("P002", 9), ("P003", 4)]
        group.active = False
        db.session.flush()
        assert [(e.pupil.number, e.weight) for e in waitlist(term)] == [("P003", 4), ("P002", 1)]


def _old_row(table: Any, **values: Any) -> int:
    """Insert a row into a table as the old revision has it (reflected, not today's model): every NOT NULL column
    without a default that `values` leaves out gets a plain value of its type. Returns the new id."""
    from sqlalchemy import Boolean, Date, DateTime, Float, Integer, Numeric

    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key or column.server_default is not None:
            continue
        kind = column.type
        row[column.name] = (False if isinstance(kind, Boolean) else 0 if isinstance(kind, Integer | Float | Numeric)
                            else datetime(2026, 9, 1) if isinstance(kind, DateTime)
                            else date(2026, 9, 1) if isinstance(kind, Date) else "x")
    return int(db.session.execute(table.insert().values(**row)).inserted_primary_key[0])


def _upgrade_keeps_weights(app: Flask) -> None:
    """At the revision before priority groups, a term with levels and pupils on them (written into the tables as
    that revision has them); after the upgrade every pupil weighs what their level weighed."""
    from alembic.script import ScriptDirectory
    from flask_migrate import upgrade
    from sqlalchemy import MetaData, inspect

    from webapp.commands import MIGRATIONS_DIR

    groups = ScriptDirectory(MIGRATIONS_DIR).get_revision("b4e2c7a9f1d3")  # the priority groups migration
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision=str(groups.down_revision))  # the revision just before it
        assert "priority_tags" not in inspect(db.engine).get_table_names()
        old = MetaData()
        old.reflect(db.engine, only=["schools", "terms", "pupils"])
        school_id = _old_row(old.tables["schools"], code="KM-UPGRADE-01", name="升级小学")
        term_id = _old_row(old.tables["terms"], school_id=school_id, name="2026-autumn",
                           priority_weights={"0": 1, "1": 2, "2": 4})
        for index in range(9):
            _old_row(old.tables["pupils"], school_id=school_id, number=f"P{index:03d}", name=f"学生{index}", grade=3,
                     priority=index % 3)
        db.session.commit()
        before = {f"P{index:03d}": {0: 1, 1: 2, 2: 4}[index % 3] for index in range(9)}
        upgrade(directory=MIGRATIONS_DIR)
        assert {"priority_groups", "priority_tags"} <= set(inspect(db.engine).get_table_names())
        db.session.expire_all()
        term = db.session.get(Term, term_id)
        assert term is not None
        assert _weights(term) == before
        db.session.remove()
        db.engine.dispose()


def test_upgrade_keeps_existing_pupils_weights_sqlite(tmp_path: Path) -> None:
    _upgrade_keeps_weights(create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'u.db'}"}))


def test_weights_and_upgrade_on_postgresql(pg_app: Flask) -> None:
    """The same rule on PostgreSQL (the max per pupil is one grouped query), then the upgrade in another schema."""
    with pg_app.app_context():
        term = _term()
        _tag("P001", _group("特殊教育需要", 8), date(2027, 1, 31))
        _tag("P002", _group("留守儿童", 3), date(2026, 10, 14))
        assert _weights(term) == {"P001": 8, "P002": 1, "P003": 4}
    with empty_schema_app(pg_app) as app:
        _upgrade_keeps_weights(app)
