"""the joint checks' basis per subject (credit_check_basis): its records in force on a date

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00

The joint reward-and-punishment checks (``serving.services.credit_checks``) cite a subject's
records in force, decided by the catalogue's one rule (``features.evidence.records_in_force``,
DuckDB over ``counted_records.sql``). Running that rule per request costs tenths of a second, so
its result is kept per subject, with the date, the highest record-row id and the policy version
it was computed for; a check recomputes a subject whose basis no longer matches.

"""

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'


def upgrade() -> None:
    op.create_table(
        'credit_check_basis',
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('records_stamp', sa.Integer(), nullable=False),
        sa.Column('policy_version', sa.String(length=80), nullable=False),
        sa.Column('entries', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('uscc'),
    )


def downgrade() -> None:
    op.drop_table('credit_check_basis')
