"""Security headers on every response, rate limits, JSON errors for the API and account commands.

`init_app(app)` is called once by the factory after the blueprints and error pages are registered:

- every response gets a Content-Security-Policy without inline script or style, nosniff, a same-origin
  referrer policy, X-Frame-Options DENY, and HSTS when the request came over HTTPS;
- `limiter` (Flask-Limiter) keeps its counters in Redis when `RATELIMIT_STORAGE_URI`, `REDIS_URL` or a
  `redis://` `CELERY_BROKER_URL` is configured, in memory otherwise; it is off under TESTING unless the test
  config sets `RATELIMIT_ENABLED=True`. With `APP_ENV=production` the app refuses to start on per-process
  memory counters (each worker would count alone) unless `RATELIMIT_ALLOW_PER_PROCESS=1` says so;
- sign-ins are limited per (account, address) pair, which locks, and per account across all addresses, which
  only slows each further attempt down: nobody can lock an owner out of their own account;
- errors under `/api/` are answered as JSON `{"error", "message", "fields"}`, never as an HTML page;
- `flask --app webapp disable-user LOGIN` (and `--enable`) closes an account and ends its sessions and tokens;
- behind `TRUSTED_PROXY_COUNT` reverse proxies (config or environment, default 0) werkzeug's ProxyFix takes
  the client's address and scheme from X-Forwarded-For / X-Forwarded-Proto, so per-address rate limits, HSTS
  and external URLs see the client rather than the proxy. With 0 those headers are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import parse as parse_limit
from sqlalchemy import select, update
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.audit import record
from webapp.extensions import db
from webapp.models import ApiToken, User
from webapp.security import normalise_phone

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
HSTS = "max-age=31536000; includeSubDomains"
LOGIN_LIMITS = "10 per minute;50 per hour"
ACCOUNT_SLOWDOWN_LIMIT = "20 per 10 minutes"  # failures on one account from anywhere before attempts slow down
ACCOUNT_SLOWDOWN_SECONDS = 1.0  # the wait before each further attempt on that account is even looked at
API_PREFIX = "/api/"
JSON_ERROR_CODES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500)

limiter = Limiter(key_func=get_remote_address)


# ------------------------------------------------------------------------------------------ headers


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith(API_PREFIX) or response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


# ------------------------------------------------------------------------------------------ rate limits


def limiter_storage_uri(config: dict[str, Any]) -> str:
    """Redis when one is configured (explicitly, or the app's Redis / Celery broker), else process memory."""
    explicit = config.get("RATELIMIT_STORAGE_URI") or os.environ.get("RATELIMIT_STORAGE_URI")
    if explicit:
        return str(explicit)
    for key in ("REDIS_URL", "CELERY_BROKER_URL"):
        value = config.get(key) or os.environ.get(key) or ""
        if str(value).startswith(("redis://", "rediss://")):
            return str(value)
    return "memory://"


def shared_limiter_storage(config: dict[str, Any]) -> bool:
    """Whether every worker counts in one place, or per-process counters were allowed explicitly."""
    allowed = config.get("RATELIMIT_ALLOW_PER_PROCESS", os.environ.get("RATELIMIT_ALLOW_PER_PROCESS", ""))
    if str(allowed).strip().lower() in ("1", "true", "yes"):
        return True
    return not str(config.get("RATELIMIT_STORAGE_URI", "memory://")).startswith("memory://")


def login_limits() -> str:
    return str(current_app.config.get("LOGIN_RATE_LIMIT", LOGIN_LIMITS))


def account_key(login: str) -> str:
    """A keyed hash of what the person typed as their login, so counters never hold phone numbers."""

    text = normalise_phone(login.strip()).lower()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return "acct:" + hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:32]


def login_account_key() -> str:
    """The throttle key of the account a sign-in form or token request names (unknown ones count too)."""
    login = request.form.get("login")
    if login is None:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            value = body.get("phone") or body.get("login")
            login = value if isinstance(value, str) else ""
    return account_key(login or "")


def failed_attempt(response: Response) -> bool:
    """Only refused sign-ins count: a successful one redirects (form) or returns 201 (API)."""
    return response.status_code not in (201, 302, 303)


def login_pair_key() -> str:
    """The throttle key of one (account, client address) pair."""
    return f"{login_account_key()}|{get_remote_address()}"


def _slowdown_limit() -> Any:
    return parse_limit(str(current_app.config.get("LOGIN_SLOWDOWN_LIMIT", ACCOUNT_SLOWDOWN_LIMIT)))


def slow_down_busy_accounts(view: Callable[..., Any]) -> Callable[..., Any]:
    """Across all addresses, an account past `LOGIN_SLOWDOWN_LIMIT` failures waits `LOGIN_SLOWDOWN_SECONDS`
    before each attempt is checked. It is never refused, so a guesser elsewhere cannot lock its owner out."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST" or not getattr(limiter, "enabled", False):
            return view(*args, **kwargs)
        key = login_account_key()
        limit = _slowdown_limit()
        try:
            busy = not limiter.limiter.test(limit, "login-account-slowdown", key)
        except Exception:  # counters unreachable: no slowdown rather than no sign-in
            busy = False
        if busy:
            time.sleep(float(current_app.config.get("LOGIN_SLOWDOWN_SECONDS", ACCOUNT_SLOWDOWN_SECONDS)))
        response = current_app.make_response(view(*args, **kwargs))
        if failed_attempt(response):
            try:
                limiter.limiter.hit(limit, "login-account-slowdown", key)
            except Exception:
                pass
        return response

    return wrapped


def throttle_login(view: Callable[..., Any]) -> Callable[..., Any]:
    """Failed sign-ins: `LOGIN_RATE_LIMIT` (default 10 a minute, 50 an hour) per (account, address) pair and
    per address, both refusing with 429; per account across addresses only a slowdown (see above)."""
    view = slow_down_busy_accounts(view)
    view = limiter.limit(login_limits, key_func=login_pair_key, methods=["POST"],
                         deduct_when=failed_attempt, scope="login-account-address")(view)
    view = limiter.limit(login_limits, key_func=get_remote_address, methods=["POST"],
                         deduct_when=failed_attempt, scope="login-ip")(view)
    return view


LINK_LIMITS = "5 per 10 minutes;20 per day"


def link_limits() -> str:
    return str(current_app.config.get("LINK_RATE_LIMIT", LINK_LIMITS))


def signed_in_key() -> str:

    return f"user:{current_user.get_id()}"


def refused_link(response: Response) -> bool:
    """A linked child redirects to the child's page; anything else was a wrong or incomplete code."""
    return response.status_code not in (302, 303)


def throttle_enrolment_codes(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrong enrolment codes per signed-in account and per address: `LINK_RATE_LIMIT` (5 in 10 min, 20 a day),
    so codes cannot be guessed by trying."""
    view = limiter.limit(link_limits, key_func=signed_in_key, methods=["POST"], deduct_when=refused_link,
                         scope="link-account")(view)
    view = limiter.limit(link_limits, key_func=get_remote_address, methods=["POST"], deduct_when=refused_link,
                         scope="link-ip")(view)
    return view


def _configure_limiter(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_ENABLED", not app.testing)
    app.config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(app.config)
    if app.config.get("PRODUCTION") and not shared_limiter_storage(app.config):
        raise RuntimeError(
            "APP_ENV=production needs rate-limit counters shared by all workers: set REDIS_URL or "
            "RATELIMIT_STORAGE_URI to a redis:// URL (or RATELIMIT_ALLOW_PER_PROCESS=1 to run with "
            f"per-process counters on purpose); got {app.config['RATELIMIT_STORAGE_URI']!r}")
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "afterschool")
    limiter.init_app(app)


# ------------------------------------------------------------------------------------------ reverse proxy


def trusted_proxy_count(config: dict[str, Any]) -> int:
    """How many proxies in front of the app append to X-Forwarded-*: `TRUSTED_PROXY_COUNT`, config then env."""
    value = config.get("TRUSTED_PROXY_COUNT")
    if value is None:
        value = os.environ.get("TRUSTED_PROXY_COUNT", "0")
    try:
        count = int(str(value).strip() or "0")
    except ValueError:
        count = -1
    if count < 0:
        raise RuntimeError(f"TRUSTED_PROXY_COUNT must be a whole number of proxies, 0 or more, not {value!r}")
    return count


def trust_proxies(app: Flask) -> None:
    """Wrap the WSGI app in ProxyFix for the configured number of proxies; nothing is trusted by default."""
    count = trusted_proxy_count(app.config)
    app.config["TRUSTED_PROXY_COUNT"] = count
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------ JSON errors


ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
               422: "invalid", 429: "too_many_requests", 500: "server_error"}


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(status: int, code: str | None = None, message: str | None = None,
               fields: dict[str, str] | None = None) -> Response:
    """The API's one error shape: {"error": code, "message": sentence, "fields": {path: sentence}}."""
    response = jsonify({"error": code or ERROR_CODES.get(status, "error"),
                        "message": message or default_message(status), "fields": fields or {}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def default_message(status: int) -> str:
    messages = {
        400: _("The request could not be understood."),
        401: _("Please sign in again."),
        403: _("You may not do this."),
        404: _("Not found."),
        405: _("This method is not allowed here."),
        409: _("This conflicts with the current state."),
        413: _("The request is too large."),
        415: _("Send the request body as JSON."),
        422: _("Some fields are not valid."),
        429: _("Too many attempts. Please wait a few minutes and try again."),
        500: _("An error occurred on our side. Please try again in a few minutes."),
    }
    return str(messages.get(status, _("The request could not be understood.")))


def _api_aware(app: Flask, status: int) -> None:
    """Answer `status` as JSON under /api/, else with the page the factory registered (or a generic one)."""
    previous = app.error_handler_spec.get(None, {}).get(status, {})
    html_handler: Callable[[HTTPException], Any] | None = next(iter(previous.values()), None)

    def handle(error: HTTPException) -> ResponseReturnValue:
        if status == 500:
            db.session.rollback()
        if is_api_request():
            response = json_error(status)
            if status == 405 and isinstance(error, HTTPException):
                allowed = error.get_response().headers.get("Allow")
                if allowed:
                    response.headers["Allow"] = allowed
            retry = getattr(error, "retry_after", None)
            if status == 429 and retry:
                response.headers["Retry-After"] = str(retry)
            return response
        if html_handler is not None:
            return html_handler(error)
        if status == 429:
            return render_template("errors/429.html"), 429
        return error if isinstance(error, HTTPException) else InternalServerError()

    app.register_error_handler(status, handle)


# ------------------------------------------------------------------------------------------ accounts


def revoke_tokens(user: User) -> int:
    """Revoke every API token of `user` (the caller commits); returns how many were live."""
    result = db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False)).values(revoked=True)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_all_sessions(user: User) -> None:
    """Every browser session and API token of `user` stops working at the next request (caller commits)."""
    user.session_version = (user.session_version or 0) + 1
    revoke_tokens(user)


def set_account_active(login: str, active: bool) -> User:
    """Disable (or re-enable) the account named by phone or username; disabling ends its sessions."""

    login = login.strip()
    user: User | None = db.session.scalar(select(User).where(User.username == login))
    if user is None:
        user = db.session.scalar(select(User).where(User.phone == normalise_phone(login)))
    if user is None:
        raise click.UsageError(f"no user with phone number or username {login!r}")
    user.active = active
    if not active:
        end_all_sessions(user)
    record("account.enable" if active else "account.disable", f"user:{user.id}", user_id=user.id,
           school_id=user.school_id)
    db.session.commit()
    return user


def _register_commands(app: Flask) -> None:
    @app.cli.command("disable-user")
    @click.argument("login")
    @click.option("--enable", is_flag=True, help="re-enable a disabled account instead")
    def disable_user_command(login: str, enable: bool) -> None:
        """Disable the account LOGIN (phone number or username): it can no longer sign in or use tokens."""
        user = set_account_active(login, enable)
        click.echo(f"{'enabled' if enable else 'disabled'} {user.role} {user.username or user.phone}")


def init_app(app: Flask) -> None:
    trust_proxies(app)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.after_request(security_headers)
    _configure_limiter(app)
    for status in JSON_ERROR_CODES:
        _api_aware(app, status)
    _register_commands(app)
