"""Class teachers (班主任) per class, teachers' contacts, absence alerts, and notifications to teacher records

Revision ID: a3c7e1f5b9d2
Revises: 8d4c1e6b2f07
Create Date: 2026-12-02 06:10:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a3c7e1f5b9d2'
down_revision = '8d4c1e6b2f07'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('teachers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('teacher_id', sa.Integer(), nullable=True))
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f('ix_notifications_teacher_id'), ['teacher_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_notifications_teacher_id_teachers'), 'teachers',
                                    ['teacher_id'], ['id'], ondelete='CASCADE')

    op.create_table('class_teachers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school_id', sa.Integer(), nullable=False),
    sa.Column('grade', sa.Integer(), nullable=False),
    sa.Column('class_name', sa.String(length=64), nullable=False),
    sa.Column('teacher_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_class_teachers_school_id_schools'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['teacher_id'], ['teachers.id'], name=op.f('fk_class_teachers_teacher_id_teachers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_class_teachers')),
    sa.UniqueConstraint('school_id', 'grade', 'class_name', name=op.f('uq_class_teachers_school_id_grade_class_name'))
    )
    with op.batch_alter_table('class_teachers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_class_teachers_teacher_id'), ['teacher_id'], unique=False)

    op.create_table('absence_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('mark_id', sa.Integer(), nullable=True),
    sa.Column('raised_by', sa.Integer(), nullable=True),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('class_teacher_id', sa.Integer(), nullable=True),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('problem', sa.String(length=32), nullable=True),
    sa.Column('arrived_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['class_teacher_id'], ['teachers.id'], name=op.f('fk_absence_alerts_class_teacher_id_teachers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mark_id'], ['roll_call_marks.id'], name=op.f('fk_absence_alerts_mark_id_roll_call_marks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_absence_alerts_notification_id_notifications'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_absence_alerts_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['raised_by'], ['users.id'], name=op.f('fk_absence_alerts_raised_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_absence_alerts_session_id_sessions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_absence_alerts')),
    sa.UniqueConstraint('pupil_id', 'day', name=op.f('uq_absence_alerts_pupil_id_day'))
    )
    with op.batch_alter_table('absence_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_absence_alerts_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_absence_alerts_class_teacher_id'), ['class_teacher_id'], unique=False)


def downgrade():
    with op.batch_alter_table('absence_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_absence_alerts_class_teacher_id'))
        batch_op.drop_index(batch_op.f('ix_absence_alerts_day'))
    op.drop_table('absence_alerts')
    with op.batch_alter_table('class_teachers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_class_teachers_teacher_id'))
    op.drop_table('class_teachers')
    op.execute("DELETE FROM notifications WHERE user_id IS NULL")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_notifications_teacher_id_teachers'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_notifications_teacher_id'))
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('teacher_id')
    with op.batch_alter_table('teachers', schema=None) as batch_op:
        batch_op.drop_column('email')
        batch_op.drop_column('phone')
