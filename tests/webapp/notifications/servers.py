"""A local SMTP server (aiosmtpd) that counts what it receives and can refuse on demand, and a local fake of
Alibaba Cloud's SMS endpoint that checks the request's signature the way the real service does."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

SMS_KEY_ID = "test-key-id"
SMS_SECRET = "test-secret-value"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpHandler:
    """Keeps every accepted message; answers 451 (try later) to the next `refuse_next` messages."""

    received: list[Message] = field(default_factory=list)
    delay: float = 0.0
    """Seconds to wait after accepting each message before answering, so a test can kill a sender mid-batch."""
    refuse_next: int = 0
    refused: int = 0
    reject_rcpt: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.reject_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        self.received.append(message_from_bytes(envelope.content))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.received]


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpHandler

    def config(self) -> dict[str, Any]:
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_FROM": "课后服务 <noreply@school.example>"}


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = SmtpHandler()
    port = free_port()
    controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def percent_encode(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    """Written from Alibaba Cloud's description of the RPC signature, independently of the app's code."""
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params.items())
    canonical = "&".join(f"{k}={v}" for k, v in pairs)
    to_sign = "&".join([method, percent_encode("/"), percent_encode(canonical)])
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


@dataclass
class FakeSms:
    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    answers: list[dict[str, str]] = field(default_factory=list)
    """Answers for the next requests (default {"Code": "OK"})."""


@pytest.fixture
def fake_sms() -> Iterator[FakeSms]:
    state = FakeSms(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            signature = params.pop("Signature", "")
            if params.get("AccessKeyId") != SMS_KEY_ID or \
                    signature != expected_signature(params, SMS_SECRET, "POST"):
                self._answer(400, {"Code": "SignatureDoesNotMatch", "Message": "bad signature"})
                return
            required = {"Action": "SendSms", "Version": "2017-05-25", "SignatureMethod": "HMAC-SHA1",
                        "SignatureVersion": "1.0", "Format": "JSON"}
            if any(params.get(key) != value for key, value in required.items()) or not params.get("PhoneNumbers"):
                self._answer(400, {"Code": "MissingParameter", "Message": "bad parameters"})
                return
            state.requests.append(params)
            answer = state.answers.pop(0) if state.answers else {"Code": "OK", "Message": "OK", "BizId": "1"}
            self._answer(200, answer)

        def _answer(self, status: int, body: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def sms_config(fake: FakeSms) -> dict[str, Any]:
    return {"SMS_PROVIDER": "aliyun", "SMS_ACCESS_KEY_ID": SMS_KEY_ID, "SMS_ACCESS_KEY_SECRET": SMS_SECRET,
            "SMS_SIGN_NAME": "课后服务", "SMS_TEMPLATE_CODE": "SMS_123456", "SMS_ENDPOINT": fake.url}
