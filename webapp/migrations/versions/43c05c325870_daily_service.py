"""Daily service: term calendar, absences, pickup persons and delegates, roll-call marks, handovers, duty teachers

Revision ID: 43c05c325870
Revises: d7e3b9a4c2f1
Create Date: 2026-12-02 02:31:31.758445

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '43c05c325870'
down_revision = 'd7e3b9a4c2f1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('absences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('reported_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cancelled_by'], ['users.id'], name=op.f('fk_absences_cancelled_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_absences_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reported_by'], ['users.id'], name=op.f('fk_absences_reported_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absences'))
    )
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.create_index('ix_absences_pupil_days', ['pupil_id', 'first_day', 'last_day'], unique=False)
        batch_op.create_index('uq_absences_active', ['pupil_id', 'first_day', 'last_day'], unique=True, sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))

    op.create_table('duty_teachers',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('teacher_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['teacher_id'], ['teachers.id'], name=op.f('fk_duty_teachers_teacher_id_teachers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_duty_teachers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_duty_teachers')),
    sa.UniqueConstraint('teacher_id', name=op.f('uq_duty_teachers_teacher_id'))
    )
    op.create_table('pickup_delegates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('valid_on', sa.Date(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_pickup_delegates_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_pickup_delegates_pupil_id_pupils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pickup_delegates'))
    )
    with op.batch_alter_table('pickup_delegates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickup_delegates_pupil_id'), ['pupil_id'], unique=False)

    op.create_table('pickup_persons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('relation', sa.String(length=20), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('removed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_pickup_persons_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_pickup_persons_pupil_id_pupils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pickup_persons'))
    )
    with op.batch_alter_table('pickup_persons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickup_persons_pupil_id'), ['pupil_id'], unique=False)

    op.create_table('school_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('absence_cutoff', sa.String(length=5), server_default='12:00', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_school_calendars_term_id_terms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_school_calendars')),
    sa.UniqueConstraint('term_id', name=op.f('uq_school_calendars_term_id'))
    )
    op.create_table('calendar_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('runs_weekday', sa.Integer(), nullable=True),
    sa.Column('pickup_time', sa.String(length=5), nullable=False),
    sa.Column('note', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['school_calendars.id'], name=op.f('fk_calendar_days_calendar_id_school_calendars'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_days')),
    sa.UniqueConstraint('calendar_id', 'day', name=op.f('uq_calendar_days_calendar_id_day'))
    )
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_days_calendar_id'), ['calendar_id'], unique=False)

    op.create_table('pickup_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('pickup_time', sa.String(length=5), nullable=False),
    sa.Column('note', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['school_calendars.id'], name=op.f('fk_pickup_windows_calendar_id_school_calendars'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pickup_windows'))
    )
    with op.batch_alter_table('pickup_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickup_windows_calendar_id'), ['calendar_id'], unique=False)

    op.create_table('handovers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('pickup_person_id', sa.Integer(), nullable=True),
    sa.Column('delegate_id', sa.Integer(), nullable=True),
    sa.Column('handed_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['delegate_id'], ['pickup_delegates.id'], name=op.f('fk_handovers_delegate_id_pickup_delegates'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['handed_by'], ['users.id'], name=op.f('fk_handovers_handed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pickup_person_id'], ['pickup_persons.id'], name=op.f('fk_handovers_pickup_person_id_pickup_persons'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_handovers_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_handovers_session_id_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handovers')),
    sa.UniqueConstraint('pupil_id', 'day', name=op.f('uq_handovers_pupil_id_day'))
    )
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handovers_day'), ['day'], unique=False)

    op.create_table('roll_call_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('marked_by', sa.Integer(), nullable=True),
    sa.Column('marked_at', sa.DateTime(), nullable=False),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['corrects_id'], ['roll_call_marks.id'], name=op.f('fk_roll_call_marks_corrects_id_roll_call_marks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['marked_by'], ['users.id'], name=op.f('fk_roll_call_marks_marked_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_roll_call_marks_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_roll_call_marks_session_id_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roll_call_marks')),
    sa.UniqueConstraint('client_id', name=op.f('uq_roll_call_marks_client_id'))
    )
    with op.batch_alter_table('roll_call_marks', schema=None) as batch_op:
        batch_op.create_index('ix_roll_call_marks_day_session', ['day', 'session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_roll_call_marks_pupil_id'), ['pupil_id'], unique=False)



def downgrade():
    with op.batch_alter_table('roll_call_marks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roll_call_marks_pupil_id'))
        batch_op.drop_index('ix_roll_call_marks_day_session')

    op.drop_table('roll_call_marks')
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handovers_day'))

    op.drop_table('handovers')
    with op.batch_alter_table('pickup_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickup_windows_calendar_id'))

    op.drop_table('pickup_windows')
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_days_calendar_id'))

    op.drop_table('calendar_days')
    op.drop_table('school_calendars')
    with op.batch_alter_table('pickup_persons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickup_persons_pupil_id'))

    op.drop_table('pickup_persons')
    with op.batch_alter_table('pickup_delegates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickup_delegates_pupil_id'))

    op.drop_table('pickup_delegates')
    op.drop_table('duty_teachers')
    with op.batch_alter_table('absences', schema=None) as batch_op:
        batch_op.drop_index('uq_absences_active', sqlite_where=sa.text('cancelled_at IS NULL'), postgresql_where=sa.text('cancelled_at IS NULL'))
        batch_op.drop_index('ix_absences_pupil_days')

    op.drop_table('absences')
