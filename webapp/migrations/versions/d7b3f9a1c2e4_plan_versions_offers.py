"""Plan versions and amendments, waitlist offers, change requests; placement and hold time

Revision ID: d7b3f9a1c2e4
Revises: c4a8e2d61f05
Create Date: 2026-12-02 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd7b3f9a1c2e4'
down_revision = 'c4a8e2d61f05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ends_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('plan_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('placement', sa.String(length=16), server_default='offer', nullable=False))
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_hold_hours', sa.Integer(), server_default='48', nullable=False))
    # Terms published before plan versions existed are at version 1 (their first publication).
    op.execute("UPDATE terms SET plan_version = 1 WHERE published_run_id IS NOT NULL")

    op.create_table(
        'plan_amendments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('term_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('violations', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_plan_amendments_actor_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['run_id'], ['allocation_runs.id'],
                                name=op.f('fk_plan_amendments_run_id_allocation_runs'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_plan_amendments_term_id_terms'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_amendments')),
        sa.UniqueConstraint('term_id', 'version', name=op.f('uq_plan_amendments_term_id_version')),
    )
    with op.batch_alter_table('plan_amendments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_amendments_term_id'), ['term_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_amendments_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_amendments_actor_id'), ['actor_id'], unique=False)

    op.create_table(
        'plan_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('amendment_id', sa.Integer(), nullable=False),
        sa.Column('pupil_id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=True),
        sa.Column('day', sa.Integer(), nullable=False),
        sa.Column('gained', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['amendment_id'], ['plan_amendments.id'],
                                name=op.f('fk_plan_changes_amendment_id_plan_amendments'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_plan_changes_pupil_id_pupils'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], name=op.f('fk_plan_changes_session_id_sessions'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_changes')),
    )
    with op.batch_alter_table('plan_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_changes_amendment_id'), ['amendment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_changes_pupil_id'), ['pupil_id'], unique=False)

    op.create_table(
        'waitlist_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('term_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('pupil_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Integer(), nullable=False),
        sa.Column('sessions', sa.JSON(), nullable=False),
        sa.Column('teachers', sa.JSON(), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('offered_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_waitlist_offers_pupil_id_pupils'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['allocation_runs.id'],
                                name=op.f('fk_waitlist_offers_run_id_allocation_runs'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_waitlist_offers_term_id_terms'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_waitlist_offers')),
    )
    with op.batch_alter_table('waitlist_offers', schema=None) as batch_op:
        batch_op.create_index('ix_waitlist_offers_term_state', ['term_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_offers_term_id'), ['term_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_offers_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_offers_pupil_id'), ['pupil_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_offers_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_waitlist_offers_expires_at'), ['expires_at'], unique=False)

    op.create_table(
        'change_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('term_id', sa.Integer(), nullable=False),
        sa.Column('pupil_id', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('effective_on', sa.Date(), nullable=False),
        sa.Column('withdraw', sa.Boolean(), nullable=False),
        sa.Column('days', sa.JSON(), nullable=False),
        sa.Column('pickup_time', sa.String(length=5), nullable=False),
        sa.Column('periods', sa.JSON(), nullable=False),
        sa.Column('preferences', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=True),
        sa.Column('amendment_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['amendment_id'], ['plan_amendments.id'],
                                name=op.f('fk_change_requests_amendment_id_plan_amendments'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_change_requests_pupil_id_pupils'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['requested_by'], ['users.id'], name=op.f('fk_change_requests_requested_by_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_change_requests_term_id_terms'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_change_requests')),
    )
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_requests_term_id'), ['term_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_requests_pupil_id'), ['pupil_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_change_requests_state'), ['state'], unique=False)


def downgrade():
    op.drop_table('change_requests')
    op.drop_table('waitlist_offers')
    op.drop_table('plan_changes')
    op.drop_table('plan_amendments')
    with op.batch_alter_table('schools', schema=None) as batch_op:
        batch_op.drop_column('offer_hold_hours')
    with op.batch_alter_table('terms', schema=None) as batch_op:
        batch_op.drop_column('placement')
        batch_op.drop_column('plan_version')
        batch_op.drop_column('ends_on')
