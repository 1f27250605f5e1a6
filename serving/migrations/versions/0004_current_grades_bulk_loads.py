"""the latest grade of each subject kept as data (current_grades), filled from the grades there
are; bulk loads keep their progress (bulk_loads)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 22:30:00

Reads, lists and plans used to rank the whole grades table (a window function) on every request;
they now read ``current_grades``, which the service maintains when it stores grades
(``serving.services.grades``). The backfill ranks the table once, with the rule the reads used:
latest as_of, then latest stored (created_at, id).
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'


def upgrade() -> None:
    op.create_table(
        'current_grades',
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('model_version', sa.String(length=80), nullable=False),
        sa.Column('grade', sa.String(length=1), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('industry', sa.String(length=1), nullable=True),
        sa.Column('district_code', sa.String(length=6), nullable=True),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('uscc'),
    )
    op.create_index('ix_current_grades_rank', 'current_grades', ['grade', 'score', 'uscc'], unique=False)
    op.create_index('ix_current_grades_industry_rank', 'current_grades',
                    ['industry', 'grade', 'score', 'uscc'], unique=False)
    op.create_index('ix_current_grades_district_rank', 'current_grades',
                    ['district_code', 'grade', 'score', 'uscc'], unique=False)
    op.create_index('ix_subjects_name', 'subjects', ['name'], unique=False)
    op.create_index('ix_grades_as_of', 'grades', ['as_of'], unique=False)
    op.create_table(
        'bulk_loads',
        sa.Column('load_id', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('finished', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('load_id'),
    )
    op.execute("""
        INSERT INTO current_grades (uscc, as_of, model_version, grade, score, industry, district_code)
        SELECT r.uscc, r.as_of, r.model_version, r.grade, r.score, s.industry, s.district_code
        FROM (SELECT g.uscc, g.as_of, g.model_version, g.grade, g.score,
                     row_number() OVER (PARTITION BY g.uscc
                                        ORDER BY g.as_of DESC, g.created_at DESC, g.id DESC) AS rank
              FROM grades g) r
        JOIN subjects s ON s.uscc = r.uscc
        WHERE r.rank = 1
    """)


def downgrade() -> None:
    op.drop_table('bulk_loads')
    op.drop_index('ix_grades_as_of', table_name='grades')
    op.drop_index('ix_subjects_name', table_name='subjects')
    op.drop_table('current_grades')
