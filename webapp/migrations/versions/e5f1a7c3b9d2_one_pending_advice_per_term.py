"""One pending capacity-advice computation per term (a partial unique index)

Revision ID: e5f1a7c3b9d2
Revises: c4a8e2f61b07
Create Date: 2026-11-29 16:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e5f1a7c3b9d2'
down_revision = 'c4a8e2f61b07'
branch_labels = None
depends_on = None

PENDING = "state IN ('queued', 'running', 'cancelling')"


def upgrade():
    # Older duplicates (several pending rows for one term) would break the index: keep the newest pending one.
    op.execute(sa.text(
        f"UPDATE capacity_advice SET state = 'cancelled' WHERE {PENDING} AND id NOT IN "
        f"(SELECT MAX(id) FROM capacity_advice WHERE {PENDING} GROUP BY term_id)"))
    op.create_index('uq_capacity_advice_pending', 'capacity_advice', ['term_id'], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade():
    op.drop_index('uq_capacity_advice_pending', table_name='capacity_advice')
