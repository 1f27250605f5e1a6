"""current grades carry the subject's name; the searches' indexes of one grade letter by key

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 00:40:00

A search riskiest first (``serving.services.subject_lists``) reads ``current_grades`` alone: per
grade letter, either the matches by the searched key's range (``ix_current_grades_name_search``,
``ix_current_grades_uscc_search``: grade, key, score…) then sorted, or the rank index in order,
testing the key on each row (on PostgreSQL the rank index now includes the name, so either reads
the index alone), whichever reads fewer rows. The name is copied from ``subjects`` (backfilled
here; kept by ``serving.services.grades`` wherever current grades or subjects are written). On
PostgreSQL the key is indexed in byte order (``COLLATE "C"``), as the search ranges compare
(``serving.db.byte_order``).
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'

SEARCH_INDEXES = {'ix_current_grades_name_search': ['grade', 'name', 'score', 'uscc'],
                  'ix_current_grades_uscc_search': ['grade', 'uscc', 'score']}


def upgrade() -> None:
    op.add_column('current_grades', sa.Column('name', sa.String(length=200), nullable=True))
    op.execute("UPDATE current_grades SET name = "
               "(SELECT subjects.name FROM subjects WHERE subjects.uscc = current_grades.uscc)")
    for name, columns in SEARCH_INDEXES.items():
        key = columns[1]
        op.create_index(name, 'current_grades', columns, postgresql_ops={key: 'COLLATE "C"'})
    if op.get_bind().dialect.name == 'postgresql':
        # the rank index includes the name: a search walking a letter in rank order tests it on the
        # index alone (else a table row per index row, and the planner sorted the whole letter on
        # the covering search index instead). SQLite's walk is told its index (``INDEXED BY``).
        op.drop_index('ix_current_grades_rank', table_name='current_grades')
        op.create_index('ix_current_grades_rank', 'current_grades', ['grade', 'score', 'uscc'],
                        postgresql_include=['name'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_current_grades_rank', table_name='current_grades')
        op.create_index('ix_current_grades_rank', 'current_grades', ['grade', 'score', 'uscc'])
    for name in SEARCH_INDEXES:
        op.drop_index(name, table_name='current_grades')
    with op.batch_alter_table('current_grades') as batch:
        batch.drop_column('name')
