"""the issuance log of credit reports (credit_reports): serial, subject, issuer, issued_at,
valid_until and the SHA-256 of the signed file

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:55:00

Issue 20 item 4.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'


def upgrade() -> None:
    op.create_table(
        'credit_reports',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('issuer', sa.String(length=80), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('serial'),
    )
    op.create_index('ix_credit_reports_uscc', 'credit_reports', ['uscc'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_credit_reports_uscc', table_name='credit_reports')
    op.drop_table('credit_reports')
