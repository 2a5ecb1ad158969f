"""Terms: the seat policy (who among equals gets the seats: spread or whole_week)

Revision ID: a7c4e1f9b3d6
Revises: 5b8e2f7a9c14
Create Date: 2026-12-02 06:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7c4e1f9b3d6'
down_revision = '5b8e2f7a9c14'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seat_policy', sa.String(length=16), server_default='spread', nullable=False))


def downgrade():
    with op.batch_alter_table('terms', schema=None) as batch_op:
        batch_op.drop_column('seat_policy')
