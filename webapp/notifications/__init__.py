"""Messages to families: written as outbox rows inside the transaction that makes the change they report.

`notify(...)` adds one `Notification` per guardian of the pupil and never commits: the caller's transaction
stores the change and its messages together or neither. The in-app inbox shows the rows as they are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Guardianship, Notification, NotificationEvent

__all__ = ["NotificationEvent", "notify"]


def notify(event: NotificationEvent, *, pupil_id: int, term_id: int | None = None,
           params: dict[str, Any] | None = None) -> list[Notification]:
    """Queue `event` for every account linked to the pupil, in the caller's transaction (no commit)."""
    event = NotificationEvent(event)
    user_ids = db.session.scalars(
        select(Guardianship.user_id).where(Guardianship.pupil_id == pupil_id).order_by(Guardianship.user_id)
    ).all()
    rows = [Notification(user_id=user_id, pupil_id=pupil_id, term_id=term_id, event=event.value,
                         params=dict(params or {})) for user_id in user_ids]
    db.session.add_all(rows)
    return rows
