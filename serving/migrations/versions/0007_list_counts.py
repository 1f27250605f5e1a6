"""the lists' totals kept per filter until the population changes (list_counts, list_counts_head)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 01:10:00

A list's first page counted the covered population on every request; the total is now kept per
list (coverage and filters) and forgotten whenever subjects, records or current grades change
(``serving.services.list_counts``).
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'


def upgrade() -> None:
    op.create_table(
        'list_counts_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO list_counts_head (id, generation) VALUES (1, 0)")
    op.create_table(
        'list_counts',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('list_counts')
    op.drop_table('list_counts_head')
