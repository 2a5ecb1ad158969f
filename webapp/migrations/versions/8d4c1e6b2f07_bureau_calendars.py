"""Daily service: calendars the city or a district publishes for schools to inherit; a school's own calendar may
leave its dates to them

Revision ID: 8d4c1e6b2f07
Revises: a7c4e1f9b3d6
Create Date: 2026-12-02 05:56:16.806345

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '8d4c1e6b2f07'
down_revision = 'a7c4e1f9b3d6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bureau_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('term_name', sa.String(length=64), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_bureau_calendars_district_id_districts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['published_by'], ['users.id'], name=op.f('fk_bureau_calendars_published_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bureau_calendars')),
    sa.UniqueConstraint('district_id', 'term_name', name=op.f('uq_bureau_calendars_district_id_term_name'))
    )
    with op.batch_alter_table('bureau_calendars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bureau_calendars_district_id'), ['district_id'], unique=False)
        batch_op.create_index('uq_bureau_calendars_city_term', ['term_name'], unique=True, sqlite_where=sa.text('district_id IS NULL'), postgresql_where=sa.text('district_id IS NULL'))

    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bureau_calendar_id', sa.Integer(), nullable=True))
        batch_op.alter_column('calendar_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_calendar_days_bureau_calendar_id'), ['bureau_calendar_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_calendar_days_bureau_calendar_id_day'), ['bureau_calendar_id', 'day'])
        batch_op.create_foreign_key(batch_op.f('fk_calendar_days_bureau_calendar_id_bureau_calendars'), 'bureau_calendars', ['bureau_calendar_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('pickup_windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bureau_calendar_id', sa.Integer(), nullable=True))
        batch_op.alter_column('calendar_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_pickup_windows_bureau_calendar_id'), ['bureau_calendar_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_pickup_windows_bureau_calendar_id_bureau_calendars'), 'bureau_calendars', ['bureau_calendar_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('school_calendars', schema=None) as batch_op:
        batch_op.alter_column('first_day',
               existing_type=sa.DATE(),
               nullable=True)
        batch_op.alter_column('last_day',
               existing_type=sa.DATE(),
               nullable=True)



def downgrade():
    # The bureau's entries, and school calendars that only inherited their dates, cannot exist before.
    op.execute("DELETE FROM calendar_days WHERE calendar_id IS NULL")
    op.execute("DELETE FROM pickup_windows WHERE calendar_id IS NULL")
    op.execute("DELETE FROM school_calendars WHERE first_day IS NULL OR last_day IS NULL")
    with op.batch_alter_table('school_calendars', schema=None) as batch_op:
        batch_op.alter_column('last_day',
               existing_type=sa.DATE(),
               nullable=False)
        batch_op.alter_column('first_day',
               existing_type=sa.DATE(),
               nullable=False)

    with op.batch_alter_table('pickup_windows', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_pickup_windows_bureau_calendar_id_bureau_calendars'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_pickup_windows_bureau_calendar_id'))
        batch_op.alter_column('calendar_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('bureau_calendar_id')

    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_calendar_days_bureau_calendar_id_bureau_calendars'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_calendar_days_bureau_calendar_id_day'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_calendar_days_bureau_calendar_id'))
        batch_op.alter_column('calendar_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('bureau_calendar_id')

    with op.batch_alter_table('bureau_calendars', schema=None) as batch_op:
        batch_op.drop_index('uq_bureau_calendars_city_term', sqlite_where=sa.text('district_id IS NULL'), postgresql_where=sa.text('district_id IS NULL'))
        batch_op.drop_index(batch_op.f('ix_bureau_calendars_district_id'))

    op.drop_table('bureau_calendars')
