"""The outbox: `notify` writes a notification per guardian, and its deliveries, in the caller's transaction;
`notify_teacher` one to a teacher record (a class teacher without an account, reached on the record's contact).

Nothing here commits. The change a notification reports and the notification itself are stored together or
not at all; the delivery job (`webapp.notifications.delivery`) only ever sees committed rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    DeliveryChannel,
    Guardianship,
    Notification,
    NotificationDelivery,
    NotificationEvent,
    Teacher,
    User,
)
from webapp.notifications.config import NotificationSettings, load_settings

EXTENSION_KEY = "notifications"


def settings() -> NotificationSettings:
    """The current app's notification settings (read and checked once per app)."""
    found = current_app.extensions.get(EXTENSION_KEY)
    if found is None:
        found = current_app.extensions[EXTENSION_KEY] = load_settings(current_app.config)
    return found


def channels_for(email: str | None, phone: str | None, active: bool = True,
                 config: NotificationSettings | None = None) -> list[DeliveryChannel]:
    """The channels an account can be reached on besides the inbox, with the channels switched on."""
    config = config or settings()
    found: list[DeliveryChannel] = []
    if active and email and config.email_enabled:
        found.append(DeliveryChannel.EMAIL)
    if active and phone and config.sms_enabled:
        found.append(DeliveryChannel.SMS)
    return found


def _plain(value: Any) -> Any:
    """Params as JSON: times become ISO strings (naive UTC, as stored everywhere)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def notify(event: NotificationEvent | str, *, pupil_id: int, term_id: int | None = None,
           params: dict[str, Any] | None = None) -> list[Notification]:
    """Queue `event` for every account linked to the pupil, in the caller's transaction (no commit).

    Each account gets one inbox row and one delivery per channel it can receive (e-mail when it has an
    address and mail is configured, SMS when it has a phone and an SMS provider is on).
    """
    event = NotificationEvent(event)
    recipients = db.session.execute(
        select(User.id, User.email, User.phone, User.active)
        .join(Guardianship, Guardianship.user_id == User.id)
        .where(Guardianship.pupil_id == pupil_id).order_by(User.id)
    ).all()
    stored = _plain(dict(params or {}))
    rows = [
        Notification(user_id=user_id, pupil_id=pupil_id, term_id=term_id, event=event.value, params=stored,
                     deliveries=[NotificationDelivery(channel=channel.value)
                                 for channel in channels_for(email, phone, active)])
        for user_id, email, phone, active in recipients
    ]
    db.session.add_all(rows)
    return rows


def notify_teacher(event: NotificationEvent | str, teacher: Teacher, *, pupil_id: int, term_id: int | None = None,
                   params: dict[str, Any] | None = None) -> Notification:
    """Queue `event` for a teacher record, in the caller's transaction (no commit): one row, and one delivery
    per channel the record's contact reaches (none when it has no contact or the channels are off)."""
    event = NotificationEvent(event)
    row = Notification(teacher_id=teacher.id, pupil_id=pupil_id, term_id=term_id, event=event.value,
                       params=_plain(dict(params or {})),
                       deliveries=[NotificationDelivery(channel=channel.value)
                                   for channel in channels_for(teacher.email, teacher.phone, teacher.active)])
    db.session.add(row)
    return row
