"""Accounts: a random session secret each, an explicit city-wide flag for bureau users, ids never reused

Every user gets a random `session_secret` (checked with the session version at each request). Bureau users
without a district become `city_wide`; from now on a district user whose district disappears sees nothing.
On SQLite the users table is rebuilt with AUTOINCREMENT so a deleted account's id is never handed out again
(env.py switches foreign keys off around the rebuild, so no referencing row is touched).

Revision ID: c4a8e2f61b07
Revises: d7b3f9a1c2e4
Create Date: 2026-12-02 10:00:00

"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4a8e2f61b07'
down_revision = 'd7b3f9a1c2e4'
branch_labels = None
depends_on = None

users = sa.table("users", sa.column("id", sa.Integer), sa.column("role", sa.String),
                 sa.column("district_id", sa.Integer), sa.column("session_secret", sa.String),
                 sa.column("city_wide", sa.Boolean))


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('city_wide', sa.Boolean(), nullable=False, server_default=sa.false()))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.select(users.c.id)).all():
        bind.execute(users.update().where(users.c.id == user_id).values(session_secret=secrets.token_hex(16)))
    bind.execute(users.update().where(users.c.role == "bureau", users.c.district_id.is_(None))
                 .values(city_wide=True))
    sqlite = bind.dialect.name == "sqlite"
    with op.batch_alter_table('users', schema=None, recreate="always" if sqlite else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.alter_column('session_secret', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('city_wide', existing_type=sa.Boolean(), server_default=None)


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('users', schema=None, recreate="always" if sqlite else "auto",
                              table_kwargs={"sqlite_autoincrement": False}) as batch_op:
        batch_op.drop_column('city_wide')
        batch_op.drop_column('session_secret')
