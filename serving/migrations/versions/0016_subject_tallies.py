"""subject_tallies: the lists' totals per (district, section, grade), kept as subjects and current grades are written

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07 13:00:00

A list's first page after any load counted the covered population (521 ms at 2 M subjects); the
totals of readers who cover every subject (or a section) are now sums of at most a few hundred
tally rows. Every subject of a (district, section) is counted under grade ``*`` by triggers on
``subjects`` (whatever writes them: the subject store, bulk loads); the current grades per letter
are counted where the service writes them (``serving.services.list_counts.tally_current``).
Seeded here from the tables as they are.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0014'

_KEY = "coalesce({row}.district_code, ''), coalesce({row}.industry, ''), '*'"
_MATCH = ("district_code = coalesce({row}.district_code, '') AND industry = coalesce({row}.industry, '') "
          "AND grade = '*'")
_ADD = ("INSERT INTO subject_tallies (district_code, industry, grade, subjects) VALUES ({key}, 1) "
        "ON CONFLICT (district_code, industry, grade) DO UPDATE SET subjects = subject_tallies.subjects + 1")
_TAKE = "UPDATE subject_tallies SET subjects = subjects - 1 WHERE {match}"
_CHANGED = ("{old}.district_code IS {distinct} {new}.district_code OR {old}.industry IS {distinct} {new}.industry")

SQLITE_TRIGGERS = [
    f"CREATE TRIGGER subject_tallies_insert AFTER INSERT ON subjects BEGIN "
    f"{_ADD.format(key=_KEY.format(row='NEW'))}; END",
    f"CREATE TRIGGER subject_tallies_delete AFTER DELETE ON subjects BEGIN "
    f"{_TAKE.format(match=_MATCH.format(row='OLD'))}; END",
    f"CREATE TRIGGER subject_tallies_update AFTER UPDATE OF district_code, industry ON subjects "
    f"WHEN {_CHANGED.format(old='OLD', new='NEW', distinct='NOT')} BEGIN "
    f"{_TAKE.format(match=_MATCH.format(row='OLD'))}; {_ADD.format(key=_KEY.format(row='NEW'))}; END",
]
POSTGRESQL_TRIGGERS = [
    "CREATE FUNCTION subject_tallies_move() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {_TAKE.format(match=_MATCH.format(row='OLD'))}; END IF; "
    f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {_ADD.format(key=_KEY.format(row='NEW'))}; END IF; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER subject_tallies_insert_delete AFTER INSERT OR DELETE ON subjects "
    "FOR EACH ROW EXECUTE FUNCTION subject_tallies_move()",
    "CREATE TRIGGER subject_tallies_update AFTER UPDATE OF district_code, industry ON subjects FOR EACH ROW "
    f"WHEN ({_CHANGED.format(old='OLD', new='NEW', distinct='DISTINCT FROM')}) "
    "EXECUTE FUNCTION subject_tallies_move()",
]


def upgrade() -> None:
    op.create_table(
        'subject_tallies',
        sa.Column('district_code', sa.String(length=6), nullable=False),
        sa.Column('industry', sa.String(length=1), nullable=False),
        sa.Column('grade', sa.String(length=1), nullable=False),
        sa.Column('subjects', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('district_code', 'industry', 'grade'),
    )
    op.execute("INSERT INTO subject_tallies (district_code, industry, grade, subjects) "
               "SELECT coalesce(district_code, ''), coalesce(industry, ''), '*', count(*) FROM subjects GROUP BY 1, 2")
    op.execute("INSERT INTO subject_tallies (district_code, industry, grade, subjects) "
               "SELECT coalesce(district_code, ''), coalesce(industry, ''), grade, count(*) FROM current_grades "
               "GROUP BY 1, 2, 3")
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER subject_tallies_update ON subjects")
        op.execute("DROP TRIGGER subject_tallies_insert_delete ON subjects")
        op.execute("DROP FUNCTION subject_tallies_move()")
    else:
        for name in ("subject_tallies_update", "subject_tallies_delete", "subject_tallies_insert"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table('subject_tallies')
