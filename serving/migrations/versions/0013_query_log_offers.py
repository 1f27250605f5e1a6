"""groups offered between workers and chained already (query_log_offers)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:10:00

A worker's group offered in the query log's spool (serving.services.querylog_spool) is chained by
the lock's holder in the same transaction that records its id here: a copy of the offer put back
later is recognised and skipped (issue 14). Rows older than twice an offer's lifetime are pruned
by the holders.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'


def upgrade() -> None:
    op.create_table(
        'query_log_offers',
        sa.Column('group_id', sa.String(length=64), nullable=False),
        sa.Column('made_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('group_id'),
    )
    op.create_index('ix_query_log_offers_made_at', 'query_log_offers', ['made_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_query_log_offers_made_at', table_name='query_log_offers')
    op.drop_table('query_log_offers')
