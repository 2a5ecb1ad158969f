"""Teachers' message language: a class teacher's alerts in Chinese (the default) or English

Revision ID: c5d9e2a7b4f1
Revises: a3c7e1f5b9d2
Create Date: 2026-12-02 11:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5d9e2a7b4f1'
down_revision = 'a3c7e1f5b9d2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('teachers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=10), server_default='zh', nullable=False))


def downgrade():
    with op.batch_alter_table('teachers', schema=None) as batch_op:
        batch_op.drop_column('locale')
