"""Messages to families: written as outbox rows inside the transaction that makes the change they report.

- `notify(event, pupil_id=..., term_id=..., params=...)` adds, for every guardian of the pupil, one
  `Notification` (the in-app inbox row) and one `NotificationDelivery` per further channel the account can
  receive (e-mail, SMS). It never commits: the caller's transaction stores the change and its messages
  together or neither (`webapp.notifications.outbox`). `notify_teacher(event, teacher, ...)` does the same
  for a teacher record without an account (the class teacher), on the record's phone and e-mail.
- `render(notification, locale=None)` words it in the recipient's language (`webapp.notifications.messages`).
- `deliver_due()` is one delivery pass, exactly once per channel (`webapp.notifications.delivery`, which
  states the concurrency contract and the interrupted-send rule). It runs as the job kind "notify"
  (`webapp.jobs.notify`): `flask --app webapp deliver-notifications`, and periodically.
- `webapp.notifications.inbox`: the parent's inbox; `webapp.notifications.routes`: its pages and the
  school's delivery log. Settings and their checks: `webapp.notifications.config`; docs/notifications.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import current_user

from webapp.models import DeliveryChannel, DeliveryState, NotificationEvent
from webapp.notifications.channels import (
    AliyunSmsProvider,
    DeliveryError,
    EmailChannel,
    LoggingSmsProvider,
    OutgoingMessage,
    SmsChannel,
    SmsProvider,
)
from webapp.notifications.config import NotificationConfigError, NotificationSettings, load_settings
from webapp.notifications.delivery import INTERRUPTED, DeliveryReport, deliver_due, send_again
from webapp.notifications.inbox import mark_all_read, mark_read, unread_count
from webapp.notifications.messages import Message, render
from webapp.notifications.outbox import EXTENSION_KEY, notify, notify_teacher, settings

__all__ = [
    "INTERRUPTED",
    "AliyunSmsProvider",
    "DeliveryChannel",
    "DeliveryError",
    "DeliveryReport",
    "DeliveryState",
    "EmailChannel",
    "LoggingSmsProvider",
    "Message",
    "NotificationConfigError",
    "NotificationEvent",
    "NotificationSettings",
    "OutgoingMessage",
    "SmsChannel",
    "SmsProvider",
    "deliver_due",
    "init_app",
    "load_settings",
    "mark_all_read",
    "mark_read",
    "notify",
    "notify_teacher",
    "render",
    "send_again",
    "settings",
    "unread_count",
]


def _header_globals() -> dict[str, Any]:
    def unread_notifications() -> int:
        if current_user.is_authenticated and current_user.role == "parent":
            return unread_count(current_user.id)
        return 0

    return {"unread_notifications": unread_notifications}


def init_app(app: Flask) -> None:
    """Check the settings now (a wrong key stops the app with a sentence naming it) and add the header count."""
    app.extensions[EXTENSION_KEY] = load_settings(app.config)
    app.context_processor(_header_globals)
