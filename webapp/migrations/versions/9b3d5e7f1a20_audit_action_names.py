"""Audit action names read area.verb (login -> auth.login, care_request_submitted -> request.submit, ...)

Revision ID: 9b3d5e7f1a20
Revises: 4e1f9c2b7a30
Create Date: 2026-11-29 16:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '9b3d5e7f1a20'
down_revision = '4e1f9c2b7a30'
branch_labels = None
depends_on = None

RENAMES = (
    ("login", "auth.login"),
    ("login_failed", "auth.login_failed"),
    ("logout", "auth.logout"),
    ("logout_other_sessions", "auth.logout_others"),
    ("register", "auth.register"),
    ("register_existing_number", "auth.register_existing"),
    ("password_changed", "auth.password_change"),
    ("password_change_failed", "auth.password_change_failed"),
    ("account_enabled", "account.enable"),
    ("account_disabled", "account.disable"),
    ("api_token_revoked", "api.token_revoke"),
    ("family_export", "family.export"),
    ("consent", "family.consent"),
    ("link_child", "family.link_child"),
    ("care_request_submitted", "request.submit"),
    ("care_request_updated", "request.update"),
    ("care_request_withdrawn", "request.withdraw"),
    ("import_pupils", "pupils.import"),
    ("import_teachers", "teachers.import"),
    ("import_sessions", "sessions.import"),
    ("save_activity", "activity.save"),
    ("delete_activity", "activity.delete"),
    ("save_session", "session.save"),
    ("delete_session", "session.delete"),
    ("save_teacher", "teacher.save"),
    ("delete_teacher", "teacher.delete"),
    ("set_request_window", "window.set"),
    ("open_request_window", "window.open"),
    ("close_request_window", "window.close"),
    ("issue_enrolment_codes", "codes.issue"),
    ("roster_export", "roster.export"),
    ("waitlist_promoted", "waitlist.promote"),
    ("purge", "privacy.purge"),
)

audit_log = sa.table("audit_log", sa.column("action", sa.String))


def _rename(pairs):
    for old, new in pairs:
        op.execute(audit_log.update().where(audit_log.c.action == old).values(action=new))


def upgrade():
    _rename(RENAMES)


def downgrade():
    _rename((new, old) for old, new in RENAMES)
