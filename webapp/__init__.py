"""The Flask web app: parents request care, school admins allocate, the bureau watches coverage."""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.routing import IntegerConverter, Map

from webapp import (
    commands,
    hardening,
    run_summary,  # noqa: F401  (its hooks keep each run's stored figures up to date)
)
from webapp.admin import bp as admin_bp
from webapp.api import bp as api_bp
from webapp.auth import bp as auth_bp
from webapp.bureau import bp as bureau_bp
from webapp.bureau.stats import MIN_CELL, check_min_cell
from webapp.daily import api as daily_api  # noqa: F401  (registers the daily routes on the API blueprint)
from webapp.daily.routes import bp as daily_bp
from webapp.extensions import (
    MIGRATIONS_DIR,
    babel,
    csrf,
    db,
    login_manager,
    migrate,
    normalise_database_url,
    register_app_factory,
)
from webapp.i18n import select_locale, template_globals
from webapp.inputs import BoundedJSONProvider
from webapp.jobs import periodic
from webapp.labels import DEFAULT_TIMEZONE, check_timezone, term_label
from webapp.models import RunState  # also: the models must be known before migrations look at metadata
from webapp.notifications import init_app as init_notifications
from webapp.notifications.routes import bp as notifications_bp
from webapp.parents import bp as parents_bp
from webapp.rosters import bp as rosters_bp
from webapp.runs import bp as runs_bp

__all__ = ["create_app", "normalise_database_url"]

PACKAGE_DIR = Path(__file__).resolve().parent
BLUEPRINTS = (auth_bp, parents_bp, admin_bp, runs_bp, rosters_bp, bureau_bp, api_bp, notifications_bp, daily_bp)
HOME_ENDPOINTS = {"parent": "parents.home", "school_admin": "admin.dashboard", "bureau": "bureau.dashboard",
                  "duty_teacher": "daily.duty"}


def _secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else from `instance/secret_key`, created (mode 0600) on first run."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def is_production() -> bool:
    return "production" in (os.environ.get("APP_ENV", ""), os.environ.get("FLASK_ENV", ""))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """WAL for concurrent readers, enforced foreign keys, and waiting instead of failing on a busy database."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def _translation_directories() -> str:
    """The shared catalogue plus one per blueprint package (`webapp/<bp>/translations`), so areas never clash."""
    dirs = [str(PACKAGE_DIR / "translations")]
    dirs += [str(path) for path in sorted(PACKAGE_DIR.glob("*/translations")) if path.is_dir()]
    return ";".join(dirs)


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in URLs stops at the database's 64-bit integers: a larger id is a 404, not an overflow."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.json = BoundedJSONProvider(app)
    app.url_map.converters["int"] = DatabaseIdConverter
    os.makedirs(app.instance_path, exist_ok=True)
    production = is_production()
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "app.db"),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=production,
        BABEL_DEFAULT_LOCALE="zh",
        TIMEZONE=DEFAULT_TIMEZONE,
        BABEL_TRANSLATION_DIRECTORIES=_translation_directories(),
        LANGUAGES={"zh": "中文", "en": "English"},
        CONSENT_POLICY_VERSION="2026-01",
        APP_NAME="课后服务",
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        IMPORT_HOLD_FOLDER=os.path.join(app.instance_path, "held-imports"),
    )
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.config["PRODUCTION"] = production
    app.config["BABEL_DEFAULT_TIMEZONE"] = check_timezone(app.config["TIMEZONE"])  # one zone for every shown time
    app.config["BUREAU_MIN_CELL"] = check_min_cell(app.config.get("BUREAU_MIN_CELL", MIN_CELL))
    if production:
        app.config["DEBUG"] = False
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)

    _init_extensions(app)
    _register_blueprints(app)
    _register_errors(app)
    # ProxyFix for TRUSTED_PROXY_COUNT proxies, security headers, rate limits, JSON errors under /api/, commands
    hardening.init_app(app)
    commands.register(app)
    init_notifications(app)  # checks MAIL_* / SMS_* / NOTIFY_*: a wrong setting stops here with a sentence
    periodic.init_app(app)  # the local scheduler, when periodic tasks are configured and Celery is not
    return app


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals["RunState"] = RunState  # templates compare run states by name, not by string
    app.jinja_env.filters["term_label"] = term_label  # "2026-autumn" -> 2026年秋季学期 on every page
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.context_processor(template_globals)


def _register_blueprints(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.route("/")
    def index() -> ResponseReturnValue:
        if current_user.is_authenticated:
            endpoint = HOME_ENDPOINTS.get(current_user.role)
            if endpoint and endpoint in app.view_functions:
                return redirect(url_for(endpoint))
            return render_template("welcome.html")
        return redirect(url_for("auth.login"))


def _register_errors(app: Flask) -> None:
    def handler(code: int) -> Any:
        def render(error: Exception) -> ResponseReturnValue:
            if code == 500:
                db.session.rollback()
            return render_template(f"errors/{code}.html"), code

        return render

    for code in (400, 403, 404, 500):
        app.register_error_handler(code, handler(code))

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> ResponseReturnValue:
        return render_template("errors/400.html", csrf=True), 400


register_app_factory(create_app)
