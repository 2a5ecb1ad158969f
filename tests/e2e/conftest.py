"""A real HTTP server in a thread (werkzeug) around an app on a temporary SQLite, for browser tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD, _make_app, make_school
from webapp.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[Flask]:
    """The app with CSRF on and a school (KM-TEST-0001) whose pupils have the test enrolment code."""
    app = _make_app(tmp_path)
    with app.app_context():
        make_school()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def live_server(live_app: Flask) -> Iterator[str]:
    """The base URL of a server on 127.0.0.1 at a free port, stopped after the test."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def chromium_path() -> str:
    if not CHROMIUM.exists():
        reason = f"browser tests need Chromium at {CHROMIUM} (CI installs it)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return str(CHROMIUM)


def sign_in_page(page: Any, base: str, login: str, *, password: str = TEST_PASSWORD,
                 keep_cookies: bool = False) -> None:
    """Sign `login` in through the form, after dropping whoever was signed in; wait for the page it lands on.

    `keep_cookies` keeps the context's cookies (a language chosen before signing in, say) instead of clearing
    them; use it only in a fresh context, where nobody is signed in yet.
    """
    if not keep_cookies:
        page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_load_state()


PHONE_WIDTH = 375
"""The phone the browser tests read pages on (CSS px)."""


def no_sideways_scroll(page: Any, what: str, width: int = PHONE_WIDTH) -> None:
    """Check the page is no wider than a `width` px screen (the phone unless told), naming `what` if it is."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{what}: the page scrolls sideways at {width}px ({scroll}px wide)"


def phone_screenshot(page: Any, shots: Path, name: str) -> None:
    """Save a full-page screenshot as `shots/name.png` and check the page does not scroll sideways on a phone."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    no_sideways_scroll(page, name)
