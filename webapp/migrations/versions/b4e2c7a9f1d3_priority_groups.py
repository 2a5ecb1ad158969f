"""Priority groups the bureau defines and the tags school admins put on pupils

Existing pupils keep their integer `priority` level and each term its `priority_weights`: a pupil without an
unexpired tag is weighted exactly as before the upgrade (see docs/priority-groups.md).

Revision ID: b4e2c7a9f1d3
Revises: 43c05c325870
Create Date: 2026-12-02 03:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b4e2c7a9f1d3'
down_revision = 'f3a9c6e2b8d1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('priority_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name_zh', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=64), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_priority_groups')),
    sa.UniqueConstraint('name_en', name=op.f('uq_priority_groups_name_en')),
    sa.UniqueConstraint('name_zh', name=op.f('uq_priority_groups_name_zh'))
    )
    op.create_table('priority_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pupil_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('tagged_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['priority_groups.id'],
                            name=op.f('fk_priority_tags_group_id_priority_groups'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pupil_id'], ['pupils.id'],
                            name=op.f('fk_priority_tags_pupil_id_pupils'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tagged_by'], ['users.id'],
                            name=op.f('fk_priority_tags_tagged_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_priority_tags')),
    sa.UniqueConstraint('pupil_id', 'group_id', name=op.f('uq_priority_tags_pupil_id_group_id'))
    )
    with op.batch_alter_table('priority_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_priority_tags_expires_on'), ['expires_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_priority_tags_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_priority_tags_pupil_id'), ['pupil_id'], unique=False)


def downgrade():
    with op.batch_alter_table('priority_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_priority_tags_pupil_id'))
        batch_op.drop_index(batch_op.f('ix_priority_tags_group_id'))
        batch_op.drop_index(batch_op.f('ix_priority_tags_expires_on'))
    op.drop_table('priority_tags')
    op.drop_table('priority_groups')
