"""background model fits (fit_jobs): a sector department's uploaded labelled file, fitted into a
registered version, with its progress

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07 01:00:00

The page that uploads the file polls the job's row (status, progress, stage) until the fit ends
as a registered version (or fails with its message). There is no revision 0008.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0007'


def upgrade() -> None:
    op.create_table(
        'fit_jobs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('section', sa.String(length=1), nullable=False),
        sa.Column('requested_by', sa.String(length=80), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('progress', sa.Float(), nullable=False),
        sa.Column('stage', sa.String(length=200), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('model_name', sa.String(length=120), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_fit_jobs_section', 'fit_jobs', ['section', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_fit_jobs_section', table_name='fit_jobs')
    op.drop_table('fit_jobs')
