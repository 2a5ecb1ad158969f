"""Notifications: the families' outbox and inbox

Revision ID: c4a8e2d61f05
Revises: 9b3d5e7f1a20
Create Date: 2026-11-29 16:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4a8e2d61f05'
down_revision = '9b3d5e7f1a20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('pupil_id', sa.Integer(), nullable=True),
        sa.Column('term_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('read_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_notifications_pupil_id_pupils'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_notifications_term_id_terms'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_unread', ['user_id', 'read_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_pupil_id'), ['pupil_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_term_id'), ['term_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_user_id'), ['user_id'], unique=False)


def downgrade():
    op.drop_table('notifications')
