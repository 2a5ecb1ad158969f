"""Daily service: the service notice and safety agreement (告家长书), versioned per term, and its signatures

Revision ID: 5b8e2f7a9c14
Revises: 43c05c325870
Create Date: 2026-12-02 03:45:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b8e2f7a9c14'
down_revision = 'b4e2c7a9f1d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('service_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('term_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('hours', sa.String(length=200), nullable=False),
    sa.Column('safety', sa.Text(), nullable=False),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['published_by'], ['users.id'], name=op.f('fk_service_notices_published_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['term_id'], ['terms.id'], name=op.f('fk_service_notices_term_id_terms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_notices')),
    sa.UniqueConstraint('term_id', 'version', name=op.f('uq_service_notices_term_id_version'))
    )
    with op.batch_alter_table('service_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_notices_term_id'), ['term_id'], unique=False)

    op.create_table('notice_signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('signed_by', sa.Integer(), nullable=True),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['service_notices.id'], name=op.f('fk_notice_signatures_notice_id_service_notices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'], name=op.f('fk_notice_signatures_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['signed_by'], ['users.id'], name=op.f('fk_notice_signatures_signed_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_signatures')),
    sa.UniqueConstraint('notice_id', 'pupil_id', name=op.f('uq_notice_signatures_notice_id_pupil_id'))
    )
    with op.batch_alter_table('notice_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_signatures_pupil_id'), ['pupil_id'], unique=False)


def downgrade():
    with op.batch_alter_table('notice_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_signatures_pupil_id'))
    op.drop_table('notice_signatures')
    with op.batch_alter_table('service_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_notices_term_id'))
    op.drop_table('service_notices')
