"""login attempts carry their outcome (limits per account and per address); the query log's
keyed chain starts after the entries chained before it (query_log_head.keyed_from)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 18:00:00

Entries that exist when this runs were chained with the unkeyed sha256 function; they stay as
they are and are checked with it. Every later entry is chained with the HMAC key
(docs/security.md, "The query log").
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'


def upgrade() -> None:
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        # rows from before were all failures
        batch_op.add_column(sa.Column('outcome', sa.String(length=10), nullable=False, server_default='failed'))
        batch_op.drop_index('ix_login_attempts_user_ip_at')
        batch_op.create_index('ix_login_attempts_user_at', ['username', 'attempted_at'], unique=False)
        batch_op.create_index('ix_login_attempts_ip_at', ['client_ip', 'attempted_at'], unique=False)
        batch_op.create_index('ix_login_attempts_at', ['attempted_at'], unique=False)
    with op.batch_alter_table('query_log_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed_from', sa.Integer(), nullable=False, server_default='1'))
    # the keyed chain begins with the next entry; the ones before keep their unkeyed hashes
    op.execute("UPDATE query_log_head SET keyed_from = seq + 1")


def downgrade() -> None:
    with op.batch_alter_table('query_log_head', schema=None) as batch_op:
        batch_op.drop_column('keyed_from')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_at')
        batch_op.drop_index('ix_login_attempts_ip_at')
        batch_op.drop_index('ix_login_attempts_user_at')
        batch_op.create_index('ix_login_attempts_user_ip_at', ['username', 'client_ip', 'attempted_at'], unique=False)
        batch_op.drop_column('outcome')
