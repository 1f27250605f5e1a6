"""grades: the (uscc, as_of) index dropped, the unique (uscc, as_of, model_version) serves its reads

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:40:00

Every read of a subject's grades by (uscc) or (uscc, as_of) is served as well by the unique
index ``uq_grades_subject_asof_model`` that begins with the same columns; the second index only
cost every stored grade one more index insertion (a bulk load of grades: a third of its insert
time, issue 22).
"""

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'


def upgrade() -> None:
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.drop_index('ix_grades_uscc_asof')


def downgrade() -> None:
    with op.batch_alter_table('grades', schema=None) as batch_op:
        batch_op.create_index('ix_grades_uscc_asof', ['uscc', 'as_of'], unique=False)
