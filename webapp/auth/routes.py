from __future__ import annotations

import json

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from webapp.accounts import delete_parent_account, record_failed_login, register_parent, revoke_other_tokens
from webapp.audit import record
from webapp.auth import recovery
from webapp.auth.forms import (
    DeleteAccountForm,
    EmptyForm,
    LoginForm,
    PasswordChangeForm,
    RegisterForm,
    ResetPasswordForm,
    ResetSmsForm,
)
from webapp.extensions import db
from webapp.hardening import account_key, end_all_sessions, failed_attempt, limiter, throttle_login
from webapp.i18n import LANG_COOKIE
from webapp.inputs import safe_next
from webapp.models import User, utcnow
from webapp.privacy import DEFAULT_RETENTION_DAYS, family_export
from webapp.security import (
    SESSION_VERSION_KEY,
    find_user_for_login,
    hash_password,
    parent_required,
    start_session,
    verify_password,
)

bp = Blueprint("auth", __name__)

REGISTER_LIMITS = "10 per minute;100 per hour"
RESET_LIMITS = "5 per 15 minutes;20 per day"
"""Wrong reset codes, per address and per phone number typed (config `PASSWORD_RESET_RATE_LIMIT`)."""
RESET_SMS_LIMITS = "3 per hour;6 per day"
"""Text-message codes asked for, per address and per phone number typed (config `PASSWORD_RESET_SMS_RATE_LIMIT`)."""


def _typed_phone_key() -> str:
    return account_key(request.form.get("phone") or "")


def _reset_limits() -> str:
    return str(current_app.config.get("PASSWORD_RESET_RATE_LIMIT", RESET_LIMITS))


def _reset_sms_limits() -> str:
    return str(current_app.config.get("PASSWORD_RESET_SMS_RATE_LIMIT", RESET_SMS_LIMITS))


@bp.route("/login", methods=["GET", "POST"])
@throttle_login
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        login_name = form.login.data or ""
        user = find_user_for_login(login_name)
        if verify_password(user, form.password.data or "") and user is not None and user.active:
            start_session(user)
            record("auth.login", f"user:{user.id}", user_id=user.id, school_id=user.school_id, commit=True)
            return redirect(safe_next(request.args.get("next"), url_for("index")))
        db.session.rollback()  # an upgraded hash of a refused (disabled) account is not kept
        record_failed_login(login_name, user)
        flash(_("Wrong phone number, username or password."), "error")
    return render_template("auth/login.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: str(current_app.config.get("REGISTER_RATE_LIMIT", REGISTER_LIMITS)), methods=["POST"],
               scope="register-ip")
def register() -> ResponseReturnValue:
    """A new number and a registered one get the same answer: the sign-in page and the same message."""
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = RegisterForm()
    if form.validate_on_submit():
        register_parent(form.phone.data or "", form.password.data or "", (form.display_name.data or "").strip(),
                        locale=request.cookies.get(LANG_COOKIE))
        flash(_("If this number was not registered yet, your account is ready: please log in. If it was, "
                "log in with the password chosen then."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    """Sign out. The session version moves on, so a copy of this session cookie is worthless from now on
    (with signed-cookie sessions this signs the account out on every browser; API tokens stay valid)."""
    if current_user.is_authenticated:
        current_user.session_version = (current_user.session_version or 0) + 1
        record("auth.logout", f"user:{current_user.id}", commit=True)
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/logout-others", methods=["POST"])
@login_required
def logout_others() -> ResponseReturnValue:
    user: User = current_user._get_current_object()
    revoke_other_tokens(user)
    session[SESSION_VERSION_KEY] = user.session_version
    flash(_("All your other sessions have been logged out, and the app sign-ins on your other devices "
            "ended."), "success")
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


@bp.route("/account")
@login_required
def account() -> ResponseReturnValue:
    return render_template("auth/account.html", form=EmptyForm())


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit(lambda: str(current_app.config.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")),
               key_func=lambda: f"user:{current_user.get_id()}", methods=["POST"],
               deduct_when=lambda response: response.status_code != 302, scope="password-change")
def change_password() -> ResponseReturnValue:
    """Any role: the current password, then a new one. Every other session and every API token ends."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user: User = current_user._get_current_object()
        if not verify_password(user, form.current.data or ""):
            form.current.errors = [*form.current.errors, _("The current password is wrong.")]
            record("auth.password_change_failed", f"user:{user.id}", commit=True)
        else:
            user.password_hash = hash_password(form.password.data or "")
            end_all_sessions(user)
            record("auth.password_change", f"user:{user.id}")
            db.session.commit()
            session[SESSION_VERSION_KEY] = user.session_version
            flash(_("Your password has been changed. Other devices have been signed out."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/password.html", form=form)


@bp.route("/account/export")
@login_required
def export() -> ResponseReturnValue:
    """Everything the service holds about the signed-in user's account and family, as a JSON download."""

    user: User = current_user._get_current_object()
    data = family_export(user)
    record("family.export", f"user:{user.id}", {"children": len(data.get("children", []))}, commit=True)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    response = make_response(body)
    response.mimetype = "application/json"
    stamp = utcnow().strftime("%Y%m%d")
    response.headers["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------ privacy notice


@bp.route("/privacy")
def privacy_notice() -> ResponseReturnValue:
    """The privacy notice in force, with its version: what every consent checkbox refers to."""
    return render_template("auth/privacy.html", policy_version=current_app.config["CONSENT_POLICY_VERSION"],
                           retention_days=DEFAULT_RETENTION_DAYS)


# ------------------------------------------------------------------------------------------ password recovery


@bp.route("/password/forgot")
def forgot_password() -> ResponseReturnValue:
    """How to get a reset code: from the school on a printed slip, or by text message when SMS is set up."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.change_password"))
    return render_template("auth/forgot.html", sms_form=ResetSmsForm() if recovery.sms_recovery_available()
                           else None)


@bp.route("/password/sms", methods=["POST"])
@limiter.limit(_reset_sms_limits, key_func=_typed_phone_key, scope="reset-sms-phone")
@limiter.limit(_reset_sms_limits, scope="reset-sms-ip")
def reset_sms() -> ResponseReturnValue:
    """Text a code if the number has an account; the answer is the same if it has none."""
    if not recovery.sms_recovery_available():
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("auth.change_password"))
    form = ResetSmsForm()
    if form.validate_on_submit():
        recovery.send_sms_code(form.phone.data or "")
        flash(_("If this number has an account, a code is on its way by text message. It is valid for "
                "%(minutes)d minutes.", minutes=recovery.SMS_VALID_MINUTES), "info")
        return redirect(url_for("auth.reset_password"))
    return render_template("auth/forgot.html", sms_form=form), 422


@bp.route("/password/reset", methods=["GET", "POST"])
@limiter.limit(_reset_limits, key_func=_typed_phone_key, methods=["POST"], deduct_when=failed_attempt,
               scope="reset-phone")
@limiter.limit(_reset_limits, methods=["POST"], deduct_when=failed_attempt, scope="reset-ip")
def reset_password() -> ResponseReturnValue:
    """Phone, reset code, new password. A wrong number and a wrong code get the same answer."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.change_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        if recovery.reset_password(form.phone.data or "", form.code.data or "", form.password.data or ""):
            flash(_("Your password has been changed. Please log in with the new one."), "success")
            return redirect(url_for("auth.login"))
        form.code.errors = [*form.code.errors, _("This code does not work for this number: it is wrong, used "
                                                 "or expired. Ask the school for a new one.")]
    return render_template("auth/reset.html", form=form), 422 if form.is_submitted() else 200


# ------------------------------------------------------------------------------------------ deleting the account


@bp.route("/account/delete", methods=["GET", "POST"])
@parent_required
@limiter.limit(lambda: str(current_app.config.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")),
               key_func=lambda: f"user:{current_user.get_id()}", methods=["POST"],
               deduct_when=lambda response: response.status_code != 302, scope="account-delete")
def delete_account() -> ResponseReturnValue:
    """GET: what is deleted and what stays, with the data download offered first; POST: password, then delete."""
    form = DeleteAccountForm()
    user: User = current_user._get_current_object()
    if form.validate_on_submit():
        if not verify_password(user, form.password.data or ""):
            db.session.rollback()
            form.password.errors = [*form.password.errors, _("The password is wrong.")]
        else:
            delete_parent_account(user)
            logout_user()
            session.clear()
            flash(_("Your account has been deleted."), "success")
            return redirect(url_for("auth.login"))
    children = sorted((link.pupil for link in user.guardianships), key=lambda p: p.name)
    return render_template("auth/delete.html", form=form, children=children), 422 if form.is_submitted() else 200
