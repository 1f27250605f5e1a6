"""costly requests counted per user, refused or not (rate_events): plan creation and the
inspection ratios

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:05:00

Before, the plan limit counted the plans created, so requests that failed (another department's
item, a duplicate id, missing data) were free however many, and the ratios had no limit at all.
(On main, re-parent onto the latest revision when the other 0005-0010 land.)
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'


def upgrade() -> None:
    op.create_table(
        'rate_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rate_events_action_actor_at', 'rate_events', ['action', 'actor', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rate_events_action_actor_at', table_name='rate_events')
    op.drop_table('rate_events')
