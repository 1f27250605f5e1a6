"""risk_warnings: the indexes the warnings list pages by key on

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:00:00

The list of warnings is read newest first, by key: ``status = ? [AND cause = ?] AND (raised_at,
id) < cursor`` (``serving.services.warning_lists``). ``(status, raised_at)`` served it on SQLite
only, where an index ends in the rowid; with ``id`` in the index every backend reads a page as a
range of it (a grading raises thousands of warnings at one ``raised_at``: without ``id`` PostgreSQL
sorts them all for each page). A cause filter has its own index, so a rare cause is not found by
reading every warning of its status.
(0015 was reserved and not used.)
"""

from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'


def upgrade() -> None:
    with op.batch_alter_table('risk_warnings', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_warnings_status')
        batch_op.create_index('ix_risk_warnings_status_raised', ['status', 'raised_at', 'id'], unique=False)
        batch_op.create_index('ix_risk_warnings_status_cause', ['status', 'cause', 'raised_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_warnings', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_warnings_status_cause')
        batch_op.drop_index('ix_risk_warnings_status_raised')
        batch_op.create_index('ix_risk_warnings_status', ['status', 'raised_at'], unique=False)
