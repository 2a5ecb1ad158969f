"""The admin's pupil page: placement in the plan in force, waitlist places, link state, manual placement."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.webapp.allocation.test_manual_placement import _id, _term
from tests.webapp.allocation.test_waitlist import _pairs
from tests.webapp.factories import create_user, post_form, sign_in
from webapp.extensions import db
from webapp.models import Pupil, Term


def test_pupil_page_and_placement_from_the_waitlist(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        term = _term()
        create_user("school_admin", school=term.school, login="placer")
        parent = create_user("parent", login="13900000003", pupil=db.session.get(Pupil, _id("W3")))
        ids = {n: _id(n) for n in ("S1", "W1", "W3", "G1")}
        run_id, term_id, phone = term.published_run_id, term.id, parent.phone
    sign_in(client, "placer")

    seated = client.get(f"/admin/pupils/{ids['S1']}").get_data(as_text=True)
    assert "15:30–16:30" in seated and "A室" in seated and "未进入候补名单" in seated and "尚未关联" in seated
    waiting = client.get(f"/admin/pupils/{ids['W3']}").get_data(as_text=True)
    assert re.search(r"周一 · 第 [23] 位", waiting) and "已关联（1）" in waiting
    assert phone not in waiting  # the number stays masked
    place = f"/admin/pupils/{ids['W3']}/place?day=1"
    assert f'href="{place}"' in waiting.replace("&amp;", "&")

    confirm = client.get(place).get_data(as_text=True)
    assert "是，安排这名学生" in confirm and 'name="reason"' in confirm
    unconfirmed = post_form(client, place, {"reason": "家庭困难"})  # the step itself, not the decision
    assert unconfirmed.status_code == 200
    no_reason = post_form(client, place, {"confirmed": "1", "reason": ""})
    assert no_reason.status_code == 200 and "请填写原因" in no_reason.get_data(as_text=True)
    with app.app_context():
        assert _pairs(run_id) == {("S1", "A")}

    done = post_form(client, place, {"confirmed": "1", "reason": "家庭困难"}, token_from=place)
    assert done.status_code == 302
    with app.app_context():
        assert _pairs(run_id) == {("S1", "A"), ("W3", "A")}
        assert db.session.get(Term, term_id).plan_version == 2  # type: ignore[union-attr]
    after = client.get(f"/admin/pupils/{ids['W3']}", follow_redirects=True).get_data(as_text=True)
    assert "已安排" in after and "15:30–16:30" in after

    full = f"/admin/pupils/{ids['W1']}/place?day=1"
    refused = post_form(client, full, {"confirmed": "1", "reason": "试一下"}, token_from=full,
                        follow_redirects=True).get_data(as_text=True)
    assert "没有空余名额" in refused
    assert client.get(f"/admin/pupils/{ids['S1']}/place?day=1").status_code == 404  # not waiting
    with app.app_context():
        assert _pairs(run_id) == {("S1", "A"), ("W3", "A")}
