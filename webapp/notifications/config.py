"""Notification settings: read once from the app config (falling back to the environment), checked at startup.

Every problem is collected and reported together as one `NotificationConfigError`, a `click.ClickException`:
`flask ...` prints it as "Error: ..." and exits, and a WSGI server refuses to start with the same sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import click

SMS_PROVIDERS = ("none", "logging", "aliyun")
DEFAULT_SMS_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


class NotificationConfigError(click.ClickException):
    """The notification settings cannot work; the message names every key at fault."""


@dataclass(frozen=True)
class NotificationSettings:
    mail_server: str = ""
    mail_port: int = 25
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_username: str = ""
    mail_password: str = ""
    mail_from: str = ""
    mail_timeout: float = 10.0
    sms_provider: str = "logging"
    sms_access_key_id: str = ""
    sms_access_key_secret: str = ""
    sms_sign_name: str = ""
    sms_template_code: str = ""
    sms_endpoint: str = DEFAULT_SMS_ENDPOINT
    sms_region: str = "cn-hangzhou"
    sms_timeout: float = 10.0
    max_attempts: int = 6
    backoff_seconds: float = 30.0
    lease_seconds: float = 300.0
    batch_size: int = 200

    @property
    def email_enabled(self) -> bool:
        return bool(self.mail_server)

    @property
    def sms_enabled(self) -> bool:
        return self.sms_provider != "none"

    @property
    def mail_domain(self) -> str:
        """The domain of `MAIL_FROM`, used in Message-IDs."""
        address = self.mail_from.rsplit("<", 1)[-1].rstrip(">")
        return address.rpartition("@")[2] or "afterschool.invalid"


class _Reader:
    """Reads keys from the Flask config, then the environment, collecting every problem."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.problems: list[str] = []
        self.use_env = not config.get("TESTING")

    def raw(self, key: str) -> Any:
        value = self.config.get(key)
        if value is None and self.use_env:
            value = os.environ.get(key)
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.raw(key)
        return default if value is None else str(value).strip()

    def number(self, key: str, default: float, *, minimum: float, maximum: float, whole: bool = False) -> Any:
        value = self.raw(key)
        if value is None or value == "":
            return default
        try:
            number = int(value) if whole else float(value)
        except (TypeError, ValueError):
            self.problems.append(f"{key} must be a {'whole ' if whole else ''}number, not {value!r}")
            return default
        if not minimum <= number <= maximum:
            self.problems.append(f"{key} must be between {minimum:g} and {maximum:g}, not {number}")
            return default
        return number

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        word = "" if value is None else str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word not in FALSE_WORDS:
            self.problems.append(f"{key} must be true or false, not {value!r}")
        return False


def load_settings(config: Any) -> NotificationSettings:
    """The settings in `config` (a Flask config or any mapping); raises `NotificationConfigError`."""
    read = _Reader(config)
    settings = NotificationSettings(
        mail_server=read.text("MAIL_SERVER"),
        mail_port=read.number("MAIL_PORT", 25, minimum=1, maximum=65535, whole=True),
        mail_use_tls=read.flag("MAIL_USE_TLS"),
        mail_use_ssl=read.flag("MAIL_USE_SSL"),
        mail_username=read.text("MAIL_USERNAME"),
        mail_password=read.text("MAIL_PASSWORD"),
        mail_from=read.text("MAIL_FROM"),
        mail_timeout=read.number("MAIL_TIMEOUT", 10.0, minimum=0.1, maximum=300),
        sms_provider=read.text("SMS_PROVIDER", "logging").lower() or "logging",
        sms_access_key_id=read.text("SMS_ACCESS_KEY_ID"),
        sms_access_key_secret=read.text("SMS_ACCESS_KEY_SECRET"),
        sms_sign_name=read.text("SMS_SIGN_NAME"),
        sms_template_code=read.text("SMS_TEMPLATE_CODE"),
        sms_endpoint=read.text("SMS_ENDPOINT", DEFAULT_SMS_ENDPOINT) or DEFAULT_SMS_ENDPOINT,
        sms_region=read.text("SMS_REGION", "cn-hangzhou") or "cn-hangzhou",
        sms_timeout=read.number("SMS_TIMEOUT", 10.0, minimum=0.1, maximum=300),
        max_attempts=read.number("NOTIFY_MAX_ATTEMPTS", 6, minimum=1, maximum=50, whole=True),
        backoff_seconds=read.number("NOTIFY_BACKOFF_SECONDS", 30.0, minimum=0, maximum=86400),
        lease_seconds=read.number("NOTIFY_LEASE_SECONDS", 300.0, minimum=1, maximum=86400),
        batch_size=read.number("NOTIFY_BATCH_SIZE", 200, minimum=1, maximum=10000, whole=True),
    )
    problems = read.problems
    if settings.mail_server:
        if "@" not in settings.mail_from:
            problems.append("MAIL_FROM must be the sender's e-mail address when MAIL_SERVER is set")
        if settings.mail_use_tls and settings.mail_use_ssl:
            problems.append("set MAIL_USE_TLS (STARTTLS) or MAIL_USE_SSL (implicit TLS), not both")
        if settings.mail_password and not settings.mail_username:
            problems.append("MAIL_PASSWORD is set but MAIL_USERNAME is not")
    if settings.sms_provider not in SMS_PROVIDERS:
        problems.append(f"SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}, not {settings.sms_provider!r}")
    elif settings.sms_provider == "aliyun":
        missing = [key for key, value in (("SMS_ACCESS_KEY_ID", settings.sms_access_key_id),
                                          ("SMS_ACCESS_KEY_SECRET", settings.sms_access_key_secret),
                                          ("SMS_SIGN_NAME", settings.sms_sign_name),
                                          ("SMS_TEMPLATE_CODE", settings.sms_template_code)) if not value]
        if missing:
            problems.append(f"SMS_PROVIDER=aliyun needs {', '.join(missing)}")
        endpoint = urlparse(settings.sms_endpoint)
        if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
            problems.append(f"SMS_ENDPOINT must be an http(s) URL, not {settings.sms_endpoint!r}")
    if problems:
        raise NotificationConfigError("notification settings: " + "; ".join(problems))
    return settings
