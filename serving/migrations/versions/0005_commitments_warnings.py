"""信用承诺 commitments signed online and 预警 risk warnings (issue 20, items 1 and 3)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:30:00

``commitments``: what an enterprise signed from the commitment catalogue, and the department's
finding (kept or broken, its basis, the record it wrote). ``risk_warnings``: rises in a subject's
risk after an ingest or a grading; ``open_key`` (unique, NULL once closed) keeps one open warning
per subject and cause, and one pending commitment per subject and matter, on every backend.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'


def upgrade() -> None:
    op.create_table(
        'commitments',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('matter_code', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('catalogue_version', sa.String(length=60), nullable=False),
        sa.Column('public', sa.Boolean(), nullable=False),
        sa.Column('signed_by', sa.String(length=80), nullable=False),
        sa.Column('signed_on', sa.Date(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('breach', sa.String(length=40), nullable=True),
        sa.Column('basis', sa.Text(), nullable=True),
        sa.Column('document_no', sa.String(length=120), nullable=True),
        sa.Column('decided_by', sa.String(length=80), nullable=True),
        sa.Column('decided_on', sa.Date(), nullable=True),
        sa.Column('record_id', sa.String(length=40), nullable=True),
        sa.Column('open_key', sa.String(length=80), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('open_key'),
    )
    op.create_index('ix_commitments_uscc', 'commitments', ['uscc'], unique=False)
    op.create_index('ix_commitments_department_status', 'commitments', ['department', 'status', 'due_on'],
                    unique=False)
    op.create_index('ix_commitments_public', 'commitments', ['public', 'signed_on'], unique=False)
    op.create_table(
        'risk_warnings',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('cause', sa.String(length=30), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('record_ids', sa.JSON(), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('raised_on', sa.Date(), nullable=False),
        sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('acknowledged_by', sa.String(length=80), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by', sa.String(length=80), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('close_note', sa.Text(), nullable=True),
        sa.Column('open_key', sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('open_key'),
    )
    op.create_index('ix_risk_warnings_uscc', 'risk_warnings', ['uscc'], unique=False)
    op.create_index('ix_risk_warnings_status', 'risk_warnings', ['status', 'raised_at'], unique=False)


def downgrade() -> None:
    op.drop_table('risk_warnings')
    op.drop_table('commitments')
