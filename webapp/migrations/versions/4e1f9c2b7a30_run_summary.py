"""run summary: coverage figures counted once per run for the bureau's dashboard

Revision ID: 4e1f9c2b7a30
Revises: 7dab0697c44b
Create Date: 2026-11-27 03:40:00

Existing runs keep an empty summary: the dashboard counts those runs from their rows until
`flask --app webapp summarize-runs` (or the next change to the run) stores it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4e1f9c2b7a30'
down_revision = '7dab0697c44b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('allocation_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('allocation_runs', schema=None) as batch_op:
        batch_op.drop_column('summary')
