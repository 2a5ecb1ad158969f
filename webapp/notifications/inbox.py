"""The in-app inbox: a parent's own notifications, newest first, and marking them read.

Every query is filtered by the account's id, so a notification of another account is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import Notification, utcnow

PER_PAGE = 20
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class InboxPage:
    items: list[Notification]
    page: int
    per_page: int
    total: int
    unread: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def unread_count(user_id: int) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.user_id == user_id, Notification.read_at.is_(None))) or 0)


def inbox_page(user_id: int, page: int = 1, per_page: int = PER_PAGE) -> InboxPage:
    """One page (1-based) of the account's notifications, newest first."""
    per_page = min(max(1, per_page), MAX_PER_PAGE)
    page = max(1, page)
    total = int(db.session.scalar(select(func.count()).select_from(Notification)
                                  .where(Notification.user_id == user_id)) or 0)
    items = list(db.session.scalars(
        select(Notification).where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * per_page).limit(per_page)))
    return InboxPage(items, page, per_page, total, unread_count(user_id))


def own_notification(user_id: int, notification_id: int) -> Notification | None:
    return db.session.scalar(select(Notification).where(Notification.id == notification_id,
                                                        Notification.user_id == user_id))


def mark_read(user_id: int, notification_id: int) -> Notification | None:
    """Mark one of the account's notifications read and commit; None when it is not theirs (or not there)."""
    row = own_notification(user_id, notification_id)
    if row is None:
        return None
    if row.read_at is None:
        row.read_at = utcnow()
        db.session.commit()
    return row


def mark_all_read(user_id: int) -> int:
    """Mark every unread notification of the account read, in one statement; returns how many."""
    result = db.session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
