"""background jobs of any kind (fit_jobs: sector fits and city plans), and a draw's head

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:10:00

``fit_jobs`` runs more than sector fits now (issue 22: a whole-city plan, 2 M subjects, ran
143 s inside its request): each job has a ``kind``; a plan job records its department, its
request (the checked plan body) and the plan it made. The sector-only columns become optional.

``draws.head``: the small part of a draw's payload a plan listing shows (the plan's summary,
the v2 commitment and salt), so that ``GET /plans`` does not read every plan's whole payload
(a city's plan is 100+ MB). Rows of older draws have none: they are read from the payload.
"""


import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'


def upgrade() -> None:
    with op.batch_alter_table('fit_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='sector_fit'))
        batch_op.add_column(sa.Column('department', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('request', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('plan_id', sa.Integer(), nullable=True))
        batch_op.alter_column('section', existing_type=sa.String(length=1), nullable=True)
        batch_op.alter_column('file_name', existing_type=sa.String(length=200), nullable=True)
        batch_op.alter_column('rows', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index('ix_fit_jobs_kind_department', ['kind', 'department', 'id'], unique=False)
    with op.batch_alter_table('draws', schema=None) as batch_op:
        batch_op.add_column(sa.Column('head', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('draws', schema=None) as batch_op:
        batch_op.drop_column('head')
    op.execute("DELETE FROM fit_jobs WHERE kind <> 'sector_fit'")
    with op.batch_alter_table('fit_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_fit_jobs_kind_department')
        batch_op.alter_column('rows', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('file_name', existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column('section', existing_type=sa.String(length=1), nullable=False)
        batch_op.drop_column('plan_id')
        batch_op.drop_column('request')
        batch_op.drop_column('department')
        batch_op.drop_column('kind')
