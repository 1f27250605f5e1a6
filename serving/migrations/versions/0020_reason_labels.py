"""reason_labels: a grade's reasons stored compactly, their labels once

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:10:00

A grade row held its five reasons as JSON objects, each with both languages' sentences: about
1 KB a row, 24 GB for a city's 24 M grades (issue 22). Each (code, label_zh, label_en) is now
stored once in ``reason_labels`` and a grade's reasons as arrays of ids and numbers
(``serving.db.reason_labels``).

Rows stored before are not rewritten: the reader takes both forms (rewriting every grade of a
city is a rewrite of the whole table under a lock, hours at 24 M rows; the old rows leave with
the monthly regrading and the retention of ``prune_grades``). The downgrade writes the compact
rows back in the old form (each reason with its labels), then drops the table: nothing is lost.
"""

import json

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        'reason_labels',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.Column('code', sa.String(length=80), nullable=False),
        sa.Column('label_zh', sa.String(length=200), nullable=False),
        sa.Column('label_en', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('digest'),
    )


def downgrade() -> None:
    connection = op.get_bind()
    labels = {i: (code, zh, en) for i, code, zh, en in connection.execute(
        sa.text("SELECT id, code, label_zh, label_en FROM reason_labels"))}
    stored = "CAST(reasons AS TEXT)" if connection.dialect.name == "postgresql" else "reasons"
    last = 0
    while True:  # the compact rows (a list of arrays), in batches by id
        rows = connection.execute(sa.text(
            f"SELECT id, {stored} FROM grades WHERE id > :last AND {stored} LIKE '[[%' ORDER BY id LIMIT {_BATCH}"),  # noqa: S608 # constants
            {"last": last}).all()
        if not rows:
            break
        connection.execute(sa.text("UPDATE grades SET reasons = :reasons WHERE id = :id").bindparams(
            sa.bindparam("reasons", type_=sa.JSON())), [{"id": i, "reasons": _expanded(json.loads(text), labels)}
                                                        for i, text in rows])
        last = rows[-1][0]
    op.drop_table('reason_labels')


def _expanded(reasons: list[list], labels: dict) -> list[dict]:
    """The old form of compact reasons (``serving.db.reason_labels.unpack``, kept here as it was)."""
    out = []
    for packed in reasons:
        code, zh, en = labels[packed[0]]
        n = len(packed)
        out.append({"code": code, "label_zh": zh, "label_en": en, "contribution": packed[1],
                    "value": packed[2] if n > 2 else None, "record_ids": packed[3] if n > 3 else [],
                    "override": packed[4] if n > 4 else False})
    return out
