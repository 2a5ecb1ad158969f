"""The wording of each `NotificationEvent`: a title and a body in the recipient's language.

A message is built only from the notification's own child (`Notification.pupil`, a child of the recipient:
`notify` writes rows for that child's guardians only), its term, and a fixed list of `params` (`version`,
`deadline`, `term`, `session`, `day`, `position`, and `reason` as one of a fixed set of sentences; for the
class teacher's messages also `grade`, `class`, `at` and `duty_teacher`: the pupil's own class, the time of
the mark and the duty teacher's name). Any other key a caller puts in `params` is stored but never shown, so
a message cannot carry another family's data by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale, format_datetime, get_locale
from flask_babel import gettext as _

from scheduler.weekdays import WEEKDAYS, weekday_name
from webapp.extensions import db
from webapp.labels import class_label, show_time, term_label
from webapp.models import Notification, NotificationEvent, Term

SHOWN_PARAMS = ("version", "deadline", "term", "session", "day", "position", "reason", "grade", "class", "at",
                "duty_teacher")
"""The only `params` keys a message may show."""


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    locale: str


def recipient_locale(locale: str | None) -> str:
    """A user's saved language if the app speaks it, else the default (Chinese)."""
    languages = current_app.config.get("LANGUAGES", {})
    if locale is not None and locale in languages:
        return locale
    return str(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh"))


def _deadline(value: Any) -> str:
    """An ISO time (naive UTC) as local time in the current language; anything else as given."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        return value[:40]
    return str(format_datetime(moment.replace(tzinfo=None), "short"))


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _values(notification: Notification) -> dict[str, str]:
    params = notification.params or {}
    pupil = notification.pupil
    term = params.get("term") or _term_name(notification.term_id)
    version, day, position = _whole(params.get("version")), _whole(params.get("day")), _whole(params.get("position"))
    return {
        "child": pupil.name if pupil is not None else "",
        "term": term_label(str(term))[:60],
        "version": str(version) if version is not None else "",
        "deadline": _deadline(params.get("deadline")),
        "session": str(params.get("session") or "")[:60],
        "class": class_label(params.get("grade"), str(params.get("class") or "")[:64]),
        "at": _moment(params.get("at")),
        "duty_teacher": str(params.get("duty_teacher") or "")[:100],
        "day": weekday_name(day, str(get_locale() or "zh")) if day is not None and day in WEEKDAYS else "",
        "position": str(position) if position is not None and position > 0 else "",
        "reason": str(params.get("reason") or ""),
    }


def _moment(value: Any) -> str:
    """An ISO time (naive UTC) as the school's local time (`labels.show_time`); anything else as nothing."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        return show_time(datetime.fromisoformat(value.removesuffix("Z")))
    except ValueError:
        return ""


def _term_name(term_id: int | None) -> str:
    term = db.session.get(Term, term_id) if term_id is not None else None
    return term.name if term is not None else ""


def _withdrawn_because(reason: str, session: str) -> str:
    """Why an offer was withdrawn, as a sentence; an unknown reason says only that the school changed the plan."""
    sentences = {
        "gone": _("The school cancelled the session %(session)s.", session=session),
        "moved": _("The school moved the session %(session)s to a day or time your request does not fit.",
                   session=session),
        "grade": _("The session %(session)s is no longer open to your child's grade.", session=session),
        "full": _("The session %(session)s now has fewer places.", session=session),
        "teacher": _("No teacher can lead the session %(session)s any more.", session=session),
    }
    return str(sentences.get(reason) or _("The school changed its sessions."))


def _wording(event: NotificationEvent, v: dict[str, str]) -> tuple[str, str]:
    child = v["child"]
    if event == NotificationEvent.RESULTS_PUBLISHED:
        title = _("After-school care results are out")
        if v["term"]:
            body = _("The after-school care timetable of %(child)s for %(term)s is published. "
                     "Open the app to see it.", child=child, term=v["term"])
        else:
            body = _("The after-school care timetable of %(child)s is published. Open the app to see it.",
                     child=child)
    elif event == NotificationEvent.PLAN_AMENDED:
        title = _("Timetable changed")
        if v["version"]:
            body = _("The school changed the timetable of %(child)s (version %(version)s). "
                     "Open the app to see what changed.", child=child, version=v["version"])
        else:
            body = _("The school changed the timetable of %(child)s. Open the app to see what changed.",
                     child=child)
    elif event == NotificationEvent.OFFER_MADE:
        title = _("A place is offered")
        if v["deadline"]:
            body = _("A place in after-school care is offered to %(child)s. Please accept or decline it by "
                     "%(deadline)s.", child=child, deadline=v["deadline"])
        else:
            body = _("A place in after-school care is offered to %(child)s. Please accept or decline it soon.",
                     child=child)
    elif event == NotificationEvent.OFFER_EXPIRING:
        title = _("Your offer expires soon")
        if v["deadline"]:
            body = _("The place offered to %(child)s expires at %(deadline)s. Please answer before then.",
                     child=child, deadline=v["deadline"])
        else:
            body = _("The place offered to %(child)s expires soon. Please answer before then.", child=child)
    elif event == NotificationEvent.OFFER_EXPIRED:
        title = _("Your offer has expired")
        body = _("The place offered to %(child)s was not accepted in time and has gone to the next family on "
                 "the waiting list.", child=child)
    elif event == NotificationEvent.OFFER_WITHDRAWN:
        title = _("Your offer was withdrawn")
        if v["day"]:
            body = _("The place offered to %(child)s on %(day)s was withdrawn.", child=child, day=v["day"])
        else:
            body = _("The place offered to %(child)s was withdrawn.", child=child)
        body += " " + _withdrawn_because(v["reason"], v["session"])
        if v["position"]:
            body += " " + _("%(child)s keeps place %(position)s on the waiting list for that day.", child=child,
                            position=v["position"])
        else:
            body += " " + _("%(child)s stays on the waiting list for that day.", child=child)
    elif event == NotificationEvent.ABSENCE_UNREPORTED:
        title = _("Your child is not at after-school care")
        body = _("%(child)s was marked absent at after-school care today (%(session)s) and no absence was "
                 "reported. Please contact the school.", child=child, session=v["session"])
    elif event == NotificationEvent.ABSENCE_ARRIVED:
        title = _("Your child is at after-school care")
        body = _("%(child)s is at after-school care today (%(session)s): the absence mark was a mistake and has "
                 "been corrected.", child=child, session=v["session"])
    elif event == NotificationEvent.CLASS_ABSENCE:
        title = _("Absence nobody reported: %(child)s", child=child)
        body = _("%(child)s (%(class_name)s) was marked absent at after-school care (%(session)s) at %(at)s by the "
                 "duty teacher %(duty_teacher)s. The family reported no absence and has been told.",
                 child=child, class_name=v["class"], session=v["session"], at=v["at"],
                 duty_teacher=v["duty_teacher"])
    elif event == NotificationEvent.CLASS_ARRIVED:
        title = _("Arrived: %(child)s", child=child)
        body = _("%(child)s (%(class_name)s) is at after-school care (%(session)s): the duty teacher %(duty_teacher)s "
                 "corrected the absence mark at %(at)s. The family has been told.",
                 child=child, class_name=v["class"], session=v["session"], at=v["at"],
                 duty_teacher=v["duty_teacher"])
    elif event == NotificationEvent.PUPIL_LEFT:
        title = _("Recorded as having left the school")
        body = _("The school recorded %(child)s as having left the school, so the after-school care seats and "
                 "request of %(child)s were withdrawn and the seats offered to other families. If this is a "
                 "mistake, please contact the school.", child=child)
    else:
        title = _("Your change request was applied")
        body = _("Your change request for %(child)s was applied. Open the app to see the new timetable.",
                 child=child)
    return title, body


def render(notification: Notification, locale: str | None = None) -> Message:
    """The notification's title and body in `locale` (default: the recipient's saved language)."""
    recipient = notification.user if notification.user is not None else notification.teacher
    saved = recipient.locale if recipient is not None else None
    chosen = recipient_locale(locale if locale is not None else saved)
    event = NotificationEvent(notification.event)
    with force_locale(chosen):
        title, body = _wording(event, _values(notification))
    return Message(title=title, body=body, locale=chosen)
