"""Delivery channels: e-mail over SMTP and SMS through a provider (a log by default, or Alibaba Cloud SMS).

A channel's `send(message)` returns when the far end has accepted the message, and raises `DeliveryError`
otherwise: `permanent` when trying again cannot help (an address refused, a template rejected), so the
delivery job retries only the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from webapp.notifications.config import NotificationSettings

logger = logging.getLogger(__name__)

ALIYUN_API_VERSION = "2017-05-25"
ALIYUN_RETRYABLE = ("Throttling", "isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "InternalError",
                    "isp.SYSTEM_ERROR")


class DeliveryError(Exception):
    """The channel did not accept the message; `permanent` when a retry cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class OutgoingMessage:
    """What a channel sends: already worded in the recipient's language.

    `message_id` is the same for every attempt of one delivery (`<delivery-ID.CHANNEL@domain>`), so a message
    sent again by hand is recognisably the same message.
    """

    delivery_id: int
    message_id: str
    to: str
    title: str
    body: str
    locale: str
    template_params: dict[str, str] = field(default_factory=dict)


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> None: ...


def mask_address(address: str) -> str:
    """Enough of a phone number or e-mail address for a log line, not enough to contact a stranger."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]}****{address[-4:]}" if len(address) >= 7 else "*" * len(address)


# ------------------------------------------------------------------------------------------ e-mail


class EmailChannel:
    """Plain-text mail through `smtplib` (STARTTLS with `MAIL_USE_TLS`, implicit TLS with `MAIL_USE_SSL`)."""

    name = "email"

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.mail_use_ssl:
            return smtplib.SMTP_SSL(s.mail_server, s.mail_port, timeout=s.mail_timeout,
                                    context=ssl.create_default_context())
        smtp = smtplib.SMTP(s.mail_server, s.mail_port, timeout=s.mail_timeout)
        if s.mail_use_tls:
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def build(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.title
        mail["Message-ID"] = message.message_id
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail.set_content(message.body + "\n")  # before Content-Language: set_content resets Content-* headers
        mail["Content-Language"] = "zh-CN" if message.locale.startswith("zh") else message.locale
        return mail

    def send(self, message: OutgoingMessage) -> None:
        mail = self.build(message)
        try:
            with self._connect() as smtp:
                if self.settings.mail_username:
                    smtp.login(self.settings.mail_username, self.settings.mail_password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            raise DeliveryError(f"recipient refused ({', '.join(map(str, codes))})",
                                permanent=all(code >= 500 for code in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(f"SMTP {exc.smtp_code}: {str(text)[:200]}",
                                permanent=exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError)
                                ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP server unreachable: {type(exc).__name__}: {exc}"[:300]) from exc


# ------------------------------------------------------------------------------------------ SMS


class SmsProvider(Protocol):
    """Sends one text to one mainland mobile number; raises `DeliveryError` when it is not accepted."""

    name: str

    def send_sms(self, phone: str, message: OutgoingMessage) -> None: ...


class LoggingSmsProvider:
    """The default provider: writes a line to the log instead of sending (development and demos)."""

    name = "logging"

    def send_sms(self, phone: str, message: OutgoingMessage) -> None:
        logger.info("SMS (log only) to %s, %s: %s", mask_address(phone), message.message_id, message.title)


def percent_encode(text: str) -> str:
    """Alibaba Cloud's RPC percent-encoding (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are)."""
    return urllib.parse.quote(text, safe="-_.~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """The HMAC-SHA1 signature of an RPC request (Alibaba Cloud "Signature Version 1.0")."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsProvider:
    """Alibaba Cloud SMS, `SendSms` (API version 2017-05-25), RPC style with the HMAC-SHA1 signature.

    The approved template (`SMS_TEMPLATE_CODE`) receives `${title}` and `${body}`. `OutId` carries the
    delivery's Message-ID, so the provider's delivery report names our row.
    """

    name = "aliyun"

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    def request_params(self, phone: str, message: OutgoingMessage) -> dict[str, str]:
        s = self.settings
        params = {
            "AccessKeyId": s.sms_access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": s.sms_region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_API_VERSION,
            "PhoneNumbers": phone,
            "SignName": s.sms_sign_name,
            "TemplateCode": s.sms_template_code,
            "TemplateParam": json.dumps(message.template_params, ensure_ascii=False, separators=(",", ":")),
            "OutId": message.message_id.strip("<>")[:64],
        }
        params["Signature"] = aliyun_signature(params, s.sms_access_key_secret)
        return params

    def send_sms(self, phone: str, message: OutgoingMessage) -> None:
        body = urllib.parse.urlencode(self.request_params(phone, message)).encode()
        request = urllib.request.Request(self.settings.sms_endpoint, data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.sms_timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            answer = _json_or_empty(exc.read())
            if not answer.get("Code"):
                raise DeliveryError(f"SMS provider HTTP {exc.code}", permanent=400 <= exc.code < 500) from exc
        except OSError as exc:  # URLError and timeouts are OSErrors
            raise DeliveryError(f"SMS provider unreachable: {exc}"[:300]) from exc
        except ValueError as exc:
            raise DeliveryError("SMS provider answered with something that is not JSON") from exc
        code = str(answer.get("Code", ""))
        if code != "OK":
            text = f"SMS provider refused: {code} {answer.get('Message', '')}".strip()[:300]
            raise DeliveryError(text, permanent=not code.startswith(ALIYUN_RETRYABLE))


def _json_or_empty(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SmsChannel:
    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    def send(self, message: OutgoingMessage) -> None:
        self.provider.send_sms(message.to, message)


def sms_provider(settings: NotificationSettings) -> SmsProvider:
    if settings.sms_provider == "aliyun":
        return AliyunSmsProvider(settings)
    return LoggingSmsProvider()


def channels(settings: NotificationSettings) -> dict[str, Channel]:
    """The channels the settings switch on, by `DeliveryChannel` value."""
    found: dict[str, Channel] = {}
    if settings.email_enabled:
        found["email"] = EmailChannel(settings)
    if settings.sms_enabled:
        found["sms"] = SmsChannel(sms_provider(settings))
    return found
