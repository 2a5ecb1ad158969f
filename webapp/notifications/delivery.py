"""Delivering the outbox: each due `NotificationDelivery` is claimed, sent, and marked, exactly once.

Concurrency contract (who locks what, which transaction owns which write):

- claim: `UPDATE ... SET state='sending', attempts=attempts+1, claim_token=T, lease_until=now+lease WHERE id=?
  AND state='pending' AND next_attempt_at<=now`, alone in its transaction. The row lock of that UPDATE picks
  the one worker that sends it; any number of delivery passes (the periodic sweep, the CLI, a Celery worker)
  may run side by side.
- send: outside any transaction, with a Message-ID fixed per delivery (`<delivery-ID.CHANNEL@domain>`).
- mark: `sent` (or back to `pending` with the next attempt time, or `failed`) in its own transaction, guarded
  by `claim_token = T`, so only the claimant writes the outcome of its attempt.

A delivery is therefore sent at most once per claim, and claimed again only after a failure its channel
reported. The one window left open is a worker that dies after the far end accepted the message and before
the mark committed: the row stays `sending`. The interrupted-send rule: when its lease has expired, the next
pass marks it `failed` with the error "interrupted" and does NOT send it again, since it may well have
arrived; a retry could send it twice. The family still has it in the in-app inbox, and the school's delivery
log shows it as interrupted, where a staff member may choose "send again" (`send_again`), which re-sends it
with the same Message-ID.

Failures the channel calls temporary are retried after `NOTIFY_BACKOFF_SECONDS * 2**(attempt-1)` (at most
`MAX_BACKOFF`), up to `NOTIFY_MAX_ATTEMPTS` attempts; permanent ones (an address refused) fail at once.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import DeliveryChannel, DeliveryState, NotificationDelivery, utcnow
from webapp.notifications.channels import Channel, DeliveryError, OutgoingMessage, channels
from webapp.notifications.config import NotificationSettings
from webapp.notifications.messages import render
from webapp.notifications.outbox import settings

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
"""`last_error` of a delivery whose sender died mid-send (shown translated in the delivery log)."""
CHANNEL_OFF = "channel switched off"
NO_ADDRESS = "the account has no address for this channel any more"
MAX_BACKOFF = timedelta(hours=6)

KILL_AFTER_ENV = "NOTIFY_TEST_KILL_AFTER"
"""Test hook: `N` makes the process exit (`os._exit`) right after its N-th delivery is marked sent; `N:send`
right after the N-th send, before the mark. Used by the killed-worker tests; never set in production."""


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    interrupted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed, "interrupted": self.interrupted}


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait before attempt `attempts + 1`: doubling from `base_seconds`, capped at `MAX_BACKOFF`."""
    return min(timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1)), MAX_BACKOFF)


def message_id(delivery: NotificationDelivery, domain: str) -> str:
    return f"<delivery-{delivery.id}.{delivery.channel}@{domain}>"


def recover_interrupted(now: datetime | None = None) -> int:
    """Mark failed ("interrupted") every delivery still `sending` after its lease: never sent again blindly."""
    now = now or utcnow()
    result = db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.state == DeliveryState.SENDING, NotificationDelivery.lease_until < now)
        .values(state=DeliveryState.FAILED, last_error=INTERRUPTED, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        logger.warning("%d notification deliveries were interrupted mid-send; not resent", count)
    return count


def due_count(now: datetime | None = None) -> int:
    """Deliveries a pass would touch now: due ones, and interrupted ones whose lease has run out."""
    now = now or utcnow()
    due = (NotificationDelivery.state == DeliveryState.PENDING) & (NotificationDelivery.next_attempt_at <= now)
    stuck = (NotificationDelivery.state == DeliveryState.SENDING) & (NotificationDelivery.lease_until < now)
    return int(db.session.scalar(select(func.count()).select_from(NotificationDelivery).where(due | stuck)) or 0)


def _claim(delivery_id: int, token: str, now: datetime, lease: timedelta) -> bool:
    result = db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.state == DeliveryState.PENDING,
               NotificationDelivery.next_attempt_at <= now)
        .values(state=DeliveryState.SENDING, attempts=NotificationDelivery.attempts + 1, claim_token=token,
                lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _mark(delivery_id: int, token: str, **values: object) -> None:
    db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.claim_token == token)
        .values(lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _outgoing(delivery: NotificationDelivery, config: NotificationSettings) -> OutgoingMessage:
    notification = delivery.notification
    recipient = notification.user or notification.teacher  # an account, or a teacher record (class teacher)
    assert recipient is not None
    address = recipient.email if delivery.channel == DeliveryChannel.EMAIL else recipient.phone
    if not address or not recipient.active:
        raise DeliveryError(NO_ADDRESS, permanent=True)
    message = render(notification)
    return OutgoingMessage(delivery_id=delivery.id, message_id=message_id(delivery, config.mail_domain),
                           to=address, title=message.title, body=message.body, locale=message.locale,
                           template_params={"title": message.title, "body": message.body})


class _KillSwitch:
    """The `NOTIFY_TEST_KILL_AFTER` hook (see there)."""

    def __init__(self) -> None:
        count, _, moment = os.environ.get(KILL_AFTER_ENV, "").partition(":")
        self.after = int(count) if count.isdigit() else 0
        self.moment = moment or "sent"
        self.count = 0

    def passed(self, moment: str) -> None:
        if self.after and moment == self.moment:
            self.count += 1
            if self.count >= self.after:
                logger.warning("%s: exiting after %d deliveries (%s)", KILL_AFTER_ENV, self.count, moment)
                os._exit(75)


def deliver_one(delivery_id: int, available: Mapping[str, Channel], config: NotificationSettings,
                report: DeliveryReport, kill: _KillSwitch | None = None) -> None:
    """Claim, send and mark one delivery; a delivery another worker claimed first is left alone."""
    token = secrets.token_hex(16)
    now = utcnow()
    if not _claim(delivery_id, token, now, timedelta(seconds=config.lease_seconds)):
        return
    delivery = db.session.get(NotificationDelivery, delivery_id)
    assert delivery is not None
    attempts = delivery.attempts
    channel = available.get(delivery.channel)
    try:
        if channel is None:
            raise DeliveryError(CHANNEL_OFF, permanent=True)
        outgoing = _outgoing(delivery, config)
        db.session.rollback()  # no transaction stays open while the far end is slow
        channel.send(outgoing)
    except DeliveryError as error:
        db.session.rollback()
        if error.permanent or attempts >= config.max_attempts:
            _mark(delivery_id, token, state=DeliveryState.FAILED, last_error=str(error)[:300])
            report.failed += 1
        else:
            _mark(delivery_id, token, state=DeliveryState.PENDING, last_error=str(error)[:300],
                  next_attempt_at=utcnow() + backoff(attempts, config.backoff_seconds))
            report.retried += 1
        logger.info("delivery %s (%s) attempt %d: %s", delivery_id, getattr(channel, "name", "?"), attempts, error)
        return
    if kill is not None:
        kill.passed("send")
    _mark(delivery_id, token, state=DeliveryState.SENT, sent_at=utcnow(), last_error=None)
    report.sent += 1
    if kill is not None:
        kill.passed("sent")


def deliver_due(limit: int | None = None, *, available: Mapping[str, Channel] | None = None) -> DeliveryReport:
    """One delivery pass: recover interrupted sends, then send up to `limit` due deliveries, oldest first."""
    config = settings()
    available = channels(config) if available is None else available
    report = DeliveryReport(interrupted=recover_interrupted())
    now = utcnow()
    ids = db.session.scalars(
        select(NotificationDelivery.id)
        .where(NotificationDelivery.state == DeliveryState.PENDING, NotificationDelivery.next_attempt_at <= now)
        .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
        .limit(limit or config.batch_size)
    ).all()
    db.session.rollback()
    kill = _KillSwitch()
    for delivery_id in ids:
        deliver_one(delivery_id, available, config, report, kill)
    return report


def send_again(delivery_id: int) -> bool:
    """A failed delivery back to pending, due now, with fresh attempts (a staff member's explicit choice).

    Guarded by the state, in the caller's transaction; False when the delivery is not failed (any more).
    """
    result = db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.state == DeliveryState.FAILED)
        .values(state=DeliveryState.PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None,
                claim_token=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
