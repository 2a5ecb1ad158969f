from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from webapp.audit import record
from webapp.auth import bp
from webapp.auth.forms import LoginForm, RegisterForm
from webapp.extensions import db
from webapp.i18n import LANG_COOKIE
from webapp.models import User, utcnow
from webapp.security import (
    find_user_for_login,
    hash_password,
    logout_other_sessions,
    start_session,
    verify_password,
)


def safe_next(target: str | None, default: str) -> str:
    """Only same-site paths: never follow `next` to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user_for_login(form.login.data or "")
        if verify_password(user, form.password.data or "") and user is not None and user.active:
            start_session(user)
            record("login", f"user:{user.id}", user_id=user.id, school_id=user.school_id, commit=True)
            return redirect(safe_next(request.args.get("next"), url_for("index")))
        flash(_("Wrong phone number, username or password."), "error")
    return render_template("auth/login.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = RegisterForm()
    if form.validate_on_submit():
        user = User(
            role="parent",
            phone=form.phone.data,
            password_hash=hash_password(form.password.data or ""),
            display_name=(form.display_name.data or "").strip(),
            locale=request.cookies.get(LANG_COOKIE),
            consent_policy_version=current_app.config["CONSENT_POLICY_VERSION"],
            consent_at=utcnow(),
        )
        db.session.add(user)
        db.session.flush()
        record("register", f"user:{user.id}", user_id=user.id)
        db.session.commit()
        start_session(user)
        flash(_("Welcome! Your account is ready."), "success")
        return redirect(url_for("index"))
    return render_template("auth/register.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        record("logout", f"user:{current_user.id}", commit=True)
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/logout-others", methods=["POST"])
@login_required
def logout_others() -> ResponseReturnValue:
    logout_other_sessions(current_user)
    record("logout_other_sessions", f"user:{current_user.id}", commit=True)
    flash(_("All your other sessions have been logged out."), "success")
    return redirect(url_for("index"))


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str) -> ResponseReturnValue:
    languages = current_app.config["LANGUAGES"]
    if code not in languages:
        abort(400)
    response = make_response(redirect(safe_next(request.form.get("next"), url_for("index"))))
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    return response
