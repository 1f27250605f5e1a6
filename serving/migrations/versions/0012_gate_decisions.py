"""releases and rejections of batches held by the data-quality gates (gate_decisions)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:30:00

Before, a held batch was released or rejected from the CLI only and audited to a JSON file in the
store; the CLI and the analyst page now both record who, when, what and why here as well.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'


def upgrade() -> None:
    op.create_table(
        'gate_decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('batch_id', sa.String(length=80), nullable=False),
        sa.Column('decision', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('rules', sa.String(length=400), nullable=False),
        sa.Column('store', sa.String(length=500), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_gate_decisions_batch_id', 'gate_decisions', ['batch_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_gate_decisions_batch_id', table_name='gate_decisions')
    op.drop_table('gate_decisions')
