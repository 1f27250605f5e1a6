"""baseline: the whole operational schema, as revisions 0001–0020 had made it

Revision ID: 0020
Revises:
Create Date: 2026-12-07 19:00:00

The pre-release history (0001–0020, last in commit 37f7e92) squashed into one revision. It keeps
the id of the head it replaces, so a database made by that chain is at this revision already and
has nothing to do; a database at an older revision is refused with what to do
(``serving.db.migrate.upgrade``, docs/postgres.md "Upgrading from before the baseline"). The
schema is the same, table for table and index for index, on SQLite and PostgreSQL, including the
column order that added columns left (last in their tables) and the server defaults that filled
them in older rows. Comments and docs that name an older revision ("migration 0016") mean the
change it made: its part of the schema is here, its file in commit 37f7e92.
"""

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = None

# dropped in the reverse order by the downgrade (foreign keys point to earlier tables)
TABLES = [
    'subjects', 'subject_tallies', 'records', 'grades', 'current_grades', 'reason_labels',
    'objections', 'repair_applications', 'commitments', 'risk_warnings', 'credit_reports', 'credit_check_basis',
    'plans', 'draws', 'inspection_results', 'list_counts_head', 'list_counts',
    'users', 'api_keys', 'revoked_tokens', 'login_attempts', 'rate_events',
    'query_log', 'query_log_head', 'query_log_offers',
    'alerts', 'monitoring_results', 'promotion_audit', 'fit_jobs', 'gate_decisions', 'bulk_loads',
]

# subjects: the list's key orders, each ending in ``uscc`` (the pages break ties by it), so that a
# page sorted by name or USCC under a district or section filter is a range read in key order, not a
# sort of the whole filtered population (0.2–1.1 s a page at 300 k subjects before)
KEY_ORDERS = {
    'ix_subjects_name_uscc': ['name', 'uscc'],
    'ix_subjects_district_uscc': ['district_code', 'uscc'],
    'ix_subjects_district_name_uscc': ['district_code', 'name', 'uscc'],
    'ix_subjects_industry_uscc': ['industry', 'uscc'],
    'ix_subjects_industry_name_uscc': ['industry', 'name', 'uscc'],
}
# PostgreSQL only: the search ranges compare in byte order (``COLLATE "C"``: ``~`` after every USCC
# character whatever the database's collation), read on indexes of the same collation
BYTE_ORDER = {'ix_subjects_uscc_c': 'uscc', 'ix_subjects_name_c': 'name'}

# subject_tallies: every subject of a (district, section) counted under grade ``*`` by triggers on
# ``subjects``, whatever writes them (the subject store, bulk loads)
_KEY = "coalesce({row}.district_code, ''), coalesce({row}.industry, ''), '*'"
_MATCH = ("district_code = coalesce({row}.district_code, '') AND industry = coalesce({row}.industry, '') "
          "AND grade = '*'")
_ADD = ("INSERT INTO subject_tallies (district_code, industry, grade, subjects) VALUES ({key}, 1) "
        "ON CONFLICT (district_code, industry, grade) DO UPDATE SET subjects = subject_tallies.subjects + 1")
_TAKE = "UPDATE subject_tallies SET subjects = subjects - 1 WHERE {match}"
_CHANGED = "{old}.district_code IS {distinct} {new}.district_code OR {old}.industry IS {distinct} {new}.industry"

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
    postgresql = op.get_bind().dialect.name == 'postgresql'
    _subjects_and_records(postgresql)
    _grades()
    _applications_commitments_warnings()
    _plans_and_lists()
    _accounts()
    _query_log()
    _models_and_operations()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for name in reversed(TABLES):  # a table's indexes and SQLite triggers go with it
        op.drop_table(name)
    if postgresql:  # the trigger function outlives the triggers
        op.execute("DROP FUNCTION subject_tallies_move()")


def _subjects_and_records(postgresql: bool) -> None:
    op.create_table(
        'subjects',
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('legal_form', sa.String(length=40), nullable=True),
        sa.Column('industry', sa.String(length=1), nullable=True),
        sa.Column('district_code', sa.String(length=6), nullable=True),
        sa.Column('district_name', sa.String(length=40), nullable=True),
        sa.Column('registered_on', sa.Date(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('legal_rep_name', sa.String(length=60), nullable=True),
        sa.Column('legal_rep_id', sa.String(length=18), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('uscc'),
    )
    op.create_index('ix_subjects_district_code', 'subjects', ['district_code'])
    op.create_index('ix_subjects_industry', 'subjects', ['industry'])
    op.create_index('ix_subjects_name', 'subjects', ['name'])
    for name, columns in KEY_ORDERS.items():
        op.create_index(name, 'subjects', columns)
    if postgresql:
        for name, column in BYTE_ORDER.items():
            op.create_index(name, 'subjects', [column], postgresql_ops={column: 'COLLATE "C"'})

    # the lists' totals per (district, section, grade): a list's first page sums at most a few
    # hundred of these instead of counting the covered population (521 ms at 2 M subjects); the
    # current grades per letter are counted where the service writes them
    # (``serving.services.list_counts.tally_current``)
    op.create_table(
        'subject_tallies',
        sa.Column('district_code', sa.String(length=6), nullable=False),
        sa.Column('industry', sa.String(length=1), nullable=False),
        sa.Column('grade', sa.String(length=1), nullable=False),
        sa.Column('subjects', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('district_code', 'industry', 'grade'),
    )
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)

    op.create_table(
        'records',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('record_id', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('is_current', sa.Boolean(), nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('subkind', sa.String(length=40), nullable=True),
        sa.Column('severity', sa.String(length=10), nullable=True),
        sa.Column('decision_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=True),
        sa.Column('publicity_end', sa.Date(), nullable=True),
        sa.Column('amount', sa.Float(), nullable=True),
        sa.Column('department', sa.String(length=40), nullable=False),
        sa.Column('document_no', sa.String(length=120), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('repaired', sa.Boolean(), nullable=False),
        sa.Column('repaired_on', sa.Date(), nullable=True),
        sa.Column('revoked', sa.Boolean(), nullable=False),
        sa.Column('revoked_on', sa.Date(), nullable=True),
        sa.Column('change_reason', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('record_id', 'version', name='uq_records_record_version'),
    )
    op.create_index('ix_records_department', 'records', ['department'])
    op.create_index('ix_records_record_id', 'records', ['record_id'])
    op.create_index('ix_records_uscc_current', 'records', ['uscc', 'is_current'])


def _grades() -> None:
    # ``reasons``: compact (arrays of a ``reason_labels`` id and numbers) or, in rows stored before
    # 0020, each reason with both languages' sentences; the reader takes both (rewriting a city's
    # grades would lock the table for hours; the old rows leave with the monthly regrading)
    op.create_table(
        'grades',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('grade', sa.String(length=1), nullable=False),
        sa.Column('probability', sa.Float(), nullable=False),
        sa.Column('model_version', sa.String(length=80), nullable=False),
        sa.Column('profile_hash', sa.String(length=64), nullable=False),
        sa.Column('base_score', sa.Float(), nullable=True),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.Column('what_if', sa.JSON(), nullable=False),
        sa.Column('stale', sa.Boolean(), nullable=False),
        sa.Column('stale_reason', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uscc', 'as_of', 'model_version', name='uq_grades_subject_asof_model'),
    )
    # no (uscc, as_of) index: the unique one above begins with the same columns and serves those
    # reads; a second one cost a bulk load of grades a third of its insert time
    op.create_index('ix_grades_as_of', 'grades', ['as_of'])

    # the latest grade of each subject, kept by the service as it stores grades
    # (``serving.services.grades``), so that reads, lists and plans do not rank the grades table
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
    op.create_index('ix_current_grades_rank', 'current_grades', ['grade', 'score', 'uscc'])
    op.create_index('ix_current_grades_industry_rank', 'current_grades', ['industry', 'grade', 'score', 'uscc'])
    op.create_index('ix_current_grades_district_rank', 'current_grades', ['district_code', 'grade', 'score', 'uscc'])

    # each (code, label_zh, label_en) of the grades' reasons stored once (``serving.db.reason_labels``):
    # a reason with both sentences in every row was about 1 KB a grade, 24 GB for a city
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


def _applications_commitments_warnings() -> None:
    op.create_table(
        'objections',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('record_id', sa.String(length=40), nullable=False),
        sa.Column('record_version', sa.Integer(), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('filed_by', sa.String(length=80), nullable=False),
        sa.Column('filed_on', sa.Date(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('due_on_approximate', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by', sa.String(length=80), nullable=True),
        sa.Column('decided_on', sa.Date(), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_objections_department', 'objections', ['department'])
    op.create_index('ix_objections_uscc', 'objections', ['uscc'])

    op.create_table(
        'repair_applications',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('record_id', sa.String(length=40), nullable=False),
        sa.Column('record_version', sa.Integer(), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.Column('applied_by', sa.String(length=80), nullable=False),
        sa.Column('applied_on', sa.Date(), nullable=False),
        sa.Column('eligible_from', sa.Date(), nullable=False),
        sa.Column('fee_cny', sa.Float(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reviewer', sa.String(length=80), nullable=True),
        sa.Column('decided_on', sa.Date(), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_repair_applications_department', 'repair_applications', ['department'])
    op.create_index('ix_repair_applications_uscc', 'repair_applications', ['uscc'])

    # 信用承诺: what an enterprise signed from the commitment catalogue, and the department's
    # finding. ``open_key`` (unique, NULL once decided) keeps one pending commitment per subject
    # and matter on every backend; likewise one open warning per subject and cause below.
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
    op.create_index('ix_commitments_uscc', 'commitments', ['uscc'])
    op.create_index('ix_commitments_department_status', 'commitments', ['department', 'status', 'due_on'])
    op.create_index('ix_commitments_public', 'commitments', ['public', 'signed_on'])

    # 预警: rises in a subject's risk after an ingest or a grading
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
    op.create_index('ix_risk_warnings_uscc', 'risk_warnings', ['uscc'])
    # the list reads newest first by key, ``status = ? [AND cause = ?] AND (raised_at, id) < cursor``
    # (``serving.services.warning_lists``): with ``id`` in the index every backend reads a page as a
    # range (a grading raises thousands of warnings at one ``raised_at``); a cause filter has its
    # own index, so a rare cause is not found by reading every warning of its status
    op.create_index('ix_risk_warnings_status_raised', 'risk_warnings', ['status', 'raised_at', 'id'])
    op.create_index('ix_risk_warnings_status_cause', 'risk_warnings', ['status', 'cause', 'raised_at', 'id'])

    # the issuance log of credit reports: serial, subject, issuer, validity, SHA-256 of the signed file
    op.create_table(
        'credit_reports',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('serial', sa.String(length=40), nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('issuer', sa.String(length=80), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.Date(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('serial'),
    )
    op.create_index('ix_credit_reports_uscc', 'credit_reports', ['uscc'])

    # the joint checks' basis per subject (``serving.services.credit_checks``): its records in force
    # on a date, kept with the highest record-row id and the policy version it was computed for
    # (the rule costs tenths of a second a subject); a check recomputes a basis that no longer matches
    op.create_table(
        'credit_check_basis',
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('records_stamp', sa.Integer(), nullable=False),
        sa.Column('policy_version', sa.String(length=80), nullable=False),
        sa.Column('entries', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('uscc'),
    )


def _plans_and_lists() -> None:
    op.create_table(
        'plans',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=False),
        sa.Column('created_by', sa.String(length=80), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_plans_department', 'plans', ['department'])

    # ``head``: the small part of the payload a plan listing shows (summary, v2 commitment and
    # salt), so that ``GET /plans`` does not read every plan's whole payload (a city's is 100+ MB);
    # draws stored before 0019 have none and are read from the payload
    op.create_table(
        'draws',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('plan_id', sa.Integer(), nullable=False),
        sa.Column('draw_seed_commitment', sa.String(length=64), nullable=False),
        sa.Column('draw_seed', sa.String(length=128), nullable=True),
        sa.Column('inputs_hash', sa.String(length=64), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('committed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revealed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('head', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['plan_id'], ['plans.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_draws_plan_id', 'draws', ['plan_id'])

    op.create_table(
        'inspection_results',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('draw_id', sa.Integer(), nullable=True),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('inspection_item', sa.String(length=40), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('inspected_on', sa.Date(), nullable=False),
        sa.Column('published_on', sa.Date(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['draw_id'], ['draws.id']),
        sa.ForeignKeyConstraint(['uscc'], ['subjects.uscc']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_inspection_results_uscc', 'inspection_results', ['uscc'])

    # a list's total kept per coverage and filters, forgotten when the generation moves on
    # (subjects, records or current grades changed; ``serving.services.list_counts``)
    op.create_table(
        'list_counts_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute("INSERT INTO list_counts_head (id, generation) VALUES (1, 0)")
    op.create_table(
        'list_counts',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def _accounts() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=80), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('department', sa.String(length=40), nullable=True),
        sa.Column('section', sa.String(length=1), nullable=True),
        sa.Column('uscc', sa.String(length=18), nullable=True),
        sa.Column('display_name', sa.String(length=80), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sessions_valid_after', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('username'),
    )
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('prefix', sa.String(length=12), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('revoked', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('prefix'),
    )
    # access tokens ended before they expire (logout)
    op.create_table(
        'revoked_tokens',
        sa.Column('token_id', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=80), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_id'),
    )
    op.create_index('ix_revoked_tokens_expires_at', 'revoked_tokens', ['expires_at'])

    # limits per account and per address; ``outcome`` defaults to 'failed' because the rows from
    # before it was added were all failures
    op.create_table(
        'login_attempts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=80), nullable=False),
        sa.Column('client_ip', sa.String(length=64), nullable=False),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False, server_default='failed'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_attempts_user_at', 'login_attempts', ['username', 'attempted_at'])
    op.create_index('ix_login_attempts_ip_at', 'login_attempts', ['client_ip', 'attempted_at'])
    op.create_index('ix_login_attempts_at', 'login_attempts', ['attempted_at'])

    # costly requests (plan creation, the inspection ratios) counted per user, refused or not
    op.create_table(
        'rate_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rate_events_action_actor_at', 'rate_events', ['action', 'actor', 'at'])


def _query_log() -> None:
    op.create_table(
        'query_log',
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('actor_role', sa.String(length=20), nullable=False),
        sa.Column('actor_kind', sa.String(length=10), nullable=False),
        sa.Column('uscc', sa.String(length=18), nullable=False),
        sa.Column('purpose', sa.String(length=200), nullable=False),
        sa.Column('endpoint', sa.String(length=200), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('personal_info_unmasked', sa.Boolean(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
    )
    op.create_index('ix_query_log_actor', 'query_log', ['actor'])
    op.create_index('ix_query_log_uscc', 'query_log', ['uscc'])

    # ``keyed_from``: the first entry chained with the HMAC key; a log begun before the keys
    # (revision 0003) keeps its older entries' unkeyed hashes and is checked with that function
    # (docs/security.md, "The query log"). Its default, 1, is the value of a log begun here.
    op.create_table(
        'query_log_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('keyed_from', sa.Integer(), nullable=False, server_default='1'),
        sa.PrimaryKeyConstraint('id'),
    )
    # the genesis of the query log's hash chain
    op.bulk_insert(sa.table('query_log_head', *map(sa.column, ('id', 'seq', 'last_hash', 'keyed_from'))),
                   [{'id': 1, 'seq': 0, 'last_hash': '0' * 64, 'keyed_from': 1}])

    # groups offered between workers and chained already (``serving.services.querylog_spool``): a
    # copy of an offer put back later is recognised and skipped; pruned after twice an offer's lifetime
    op.create_table(
        'query_log_offers',
        sa.Column('group_id', sa.String(length=64), nullable=False),
        sa.Column('made_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('group_id'),
    )
    op.create_index('ix_query_log_offers_made_at', 'query_log_offers', ['made_at'])


def _models_and_operations() -> None:
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('code', sa.String(length=60), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('model_version', sa.String(length=80), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('acknowledged', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'monitoring_results',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('model_version', sa.String(length=80), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'promotion_audit',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('model_name', sa.String(length=120), nullable=False),
        sa.Column('from_version', sa.String(length=80), nullable=True),
        sa.Column('to_version', sa.String(length=80), nullable=False),
        sa.Column('decided_by', sa.String(length=80), nullable=False),
        sa.Column('decision', sa.String(length=20), nullable=False),
        sa.Column('evidence', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )

    # background jobs, polled by their pages: a sector department's fit of an uploaded labelled
    # file (the first kind: ``kind`` defaults to it, the sector columns are optional for the
    # others) and a whole city's plan (its department, request and the plan it made)
    op.create_table(
        'fit_jobs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('section', sa.String(length=1), nullable=True),
        sa.Column('requested_by', sa.String(length=80), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=True),
        sa.Column('rows', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('progress', sa.Float(), nullable=False),
        sa.Column('stage', sa.String(length=200), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('model_name', sa.String(length=120), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False, server_default='sector_fit'),
        sa.Column('department', sa.String(length=40), nullable=True),
        sa.Column('request', sa.JSON(), nullable=True),
        sa.Column('plan_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_fit_jobs_section', 'fit_jobs', ['section', 'id'])
    op.create_index('ix_fit_jobs_kind_department', 'fit_jobs', ['kind', 'department', 'id'])

    # releases and rejections of batches held by the data-quality gates (CLI and analyst page)
    op.create_table(
        'gate_decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('batch_id', sa.String(length=80), nullable=False),
        sa.Column('decision', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('rules', sa.String(length=400), nullable=False),
        sa.Column('store', sa.String(length=500), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_gate_decisions_batch_id', 'gate_decisions', ['batch_id'])

    # a bulk load's progress, so that an interrupted one resumes
    op.create_table(
        'bulk_loads',
        sa.Column('load_id', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('finished', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('load_id'),
    )
