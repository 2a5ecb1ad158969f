"""Pages: the parent's inbox (`/family/notifications`), their e-mail address, and the school's delivery log.

Parents see only their own notifications (every query is by their account id; another's is 404). School
admins see the deliveries of notifications about their own school's pupils, without the message text; the
bureau has no page here (403).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from webapp.admin.scope import mask_phone
from webapp.audit import record
from webapp.extensions import db
from webapp.labels import show_time
from webapp.models import DeliveryState, Notification, NotificationDelivery, NotificationEvent, Pupil, User
from webapp.notifications import inbox
from webapp.notifications.delivery import INTERRUPTED, send_again
from webapp.notifications.forms import EmailForm
from webapp.notifications.messages import render
from webapp.security import parent_required, school_admin_required

bp = Blueprint("notifications", __name__)

LOG_PAGE_SIZE = 50

EVENT_LABELS = {
    NotificationEvent.RESULTS_PUBLISHED: _l("Results published"),
    NotificationEvent.PLAN_AMENDED: _l("Timetable changed"),
    NotificationEvent.OFFER_MADE: _l("Place offered"),
    NotificationEvent.OFFER_EXPIRING: _l("Offer expiring"),
    NotificationEvent.OFFER_EXPIRED: _l("Offer expired"),
    NotificationEvent.OFFER_WITHDRAWN: _l("Offer withdrawn"),
    NotificationEvent.CHANGE_APPLIED: _l("Change applied"),
    NotificationEvent.ABSENCE_UNREPORTED: _l("Unreported absence"),
    NotificationEvent.ABSENCE_ARRIVED: _l("Arrived after all"),
    NotificationEvent.CLASS_ABSENCE: _l("Unreported absence (to the class teacher)"),
    NotificationEvent.CLASS_ARRIVED: _l("Arrived after all (to the class teacher)"),
    NotificationEvent.PUPIL_LEFT: _l("Recorded as having left the school"),
}
CHANNEL_LABELS = {"email": _l("E-mail"), "sms": _l("SMS")}
STATE_LABELS = {
    DeliveryState.PENDING: _l("waiting"),
    DeliveryState.SENDING: _l("sending"),
    DeliveryState.SENT: _l("sent"),
    DeliveryState.FAILED: _l("failed"),
}


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100000 else 1


# ------------------------------------------------------------------------------------------ parents


@bp.route("/family/notifications")
@parent_required
def inbox_page() -> ResponseReturnValue:
    found = inbox.inbox_page(current_user.id, _page_arg())
    locale = str(get_locale() or "zh")
    items = [(row, render(row, locale)) for row in found.items]
    return render_template("notifications/inbox.html", inbox=found, items=items, show_time=show_time)


def _back_to_inbox() -> ResponseReturnValue:
    page = request.form.get("page", "")
    return redirect(url_for("notifications.inbox_page", page=int(page)) if page.isdigit() and 1 < int(page) < 100000
                    else url_for("notifications.inbox_page"))


@bp.route("/family/notifications/<int:notification_id>/read", methods=["POST"])
@parent_required
def read(notification_id: int) -> ResponseReturnValue:
    if inbox.mark_read(current_user.id, notification_id) is None:
        abort(404)
    return _back_to_inbox()


@bp.route("/family/notifications/read-all", methods=["POST"])
@parent_required
def read_all() -> ResponseReturnValue:
    count = inbox.mark_all_read(current_user.id)
    if count:
        flash(_("All messages are marked as read."), "success")
    return _back_to_inbox()


@bp.route("/family/notifications/email", methods=["GET", "POST"])
@parent_required
def email() -> ResponseReturnValue:
    """The optional e-mail address that notifications are also sent to."""
    form = EmailForm(email=current_user.email)
    if form.validate_on_submit():
        address = form.email.data or None
        user = db.session.get(User, current_user.id)
        assert user is not None
        if address != user.email:
            user.email = address
            record("account.email_change", f"user:{user.id}", {"has_email": address is not None})
            db.session.commit()
        flash(_("Your e-mail address is saved.") if address else _("Your e-mail address is removed."), "success")
        return redirect(url_for("auth.account"))
    return render_template("notifications/email.html", form=form), 400 if form.errors else 200


# ------------------------------------------------------------------------------------------ school admins


def _error_text(error: str | None) -> str:
    if error == INTERRUPTED:
        return _("Interrupted while sending: it may have arrived, so it was not sent again.")
    return error or ""


@bp.route("/admin/notifications")
@school_admin_required
def delivery_log() -> ResponseReturnValue:
    """Deliveries of notifications about this school's pupils, newest first; `?state=failed` for problems."""
    state = request.args.get("state", "")
    query = (select(Notification).join(Pupil, Notification.pupil_id == Pupil.id)
             .where(Pupil.school_id == g.school.id))
    if state in STATE_LABELS:
        query = query.where(Notification.id.in_(
            select(NotificationDelivery.notification_id).where(NotificationDelivery.state == state)))
    else:
        state = ""
    total = int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, -(-total // LOG_PAGE_SIZE))
    page = min(_page_arg(), pages)
    rows = db.session.scalars(
        query.options(selectinload(Notification.deliveries), selectinload(Notification.pupil),
                      selectinload(Notification.user), selectinload(Notification.teacher))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * LOG_PAGE_SIZE).limit(LOG_PAGE_SIZE)).all()
    return render_template("notifications/delivery_log.html", rows=rows, page=page, pages=pages, total=total,
                           state=state, event_labels=EVENT_LABELS, channel_labels=CHANNEL_LABELS,
                           state_labels=STATE_LABELS, show_time=show_time, mask_phone=mask_phone,
                           error_text=_error_text)


@bp.route("/admin/notifications/deliveries/<int:delivery_id>/send-again", methods=["POST"])
@school_admin_required
def resend(delivery_id: int) -> ResponseReturnValue:
    """Send a failed (or interrupted) delivery again: the staff member accepts that it may arrive twice."""
    delivery = db.session.scalar(
        select(NotificationDelivery).join(Notification).join(Pupil, Notification.pupil_id == Pupil.id)
        .where(NotificationDelivery.id == delivery_id, Pupil.school_id == g.school.id))
    if delivery is None:
        abort(404)
    if send_again(delivery.id):
        record("notification.send_again", f"delivery:{delivery.id}", {"channel": delivery.channel})
        db.session.commit()
        flash(_("The message will be sent again shortly."), "success")
    else:
        db.session.rollback()
        flash(_("Only a failed message can be sent again."), "warning")
    return redirect(url_for("notifications.delivery_log", state=request.form.get("state") or None))
