"""Statements on the driver's cursor (serving.db.driver) give what ``Connection.execute`` gives:
the same converted values and SQLAlchemy's own errors (on SQLite, and on PostgreSQL when
``TEST_DATABASE_URL`` is set)."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, column, exc, select, table

from serving.db.driver import compiled_for
from serving.db.reason_labels import expand
from serving.security import Principal
from serving.services.access import _can_read_statement, can_read
from serving.services.grades import _LATEST_VALUES, latest_grade_values


def test_the_grade_read_equals_sqlalchemys_row(session, world):
    expected = dict(session.execute(_LATEST_VALUES, {"uscc": world.ent1}).mappings().one())
    # the labels' generation is read with the row, for the label cache, and not answered
    assert expected.pop("labels_generation")
    # the reasons stored compactly, read with their labels (serving.db.reason_labels), as the read does
    expected["reasons"] = expand(session.connection(), [expected["reasons"]])[0]
    assert expected["base_score"] is not None and expected["reasons"]  # floats, JSON, dates all present
    got = latest_grade_values(session, world.ent1)
    assert got == expected
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_the_coverage_check_equals_sqlalchemys(session, world):
    for who in (Principal(username="x", role="enterprise", uscc=world.ent1),
                Principal(username="x", role="enterprise", uscc=world.ent2),
                Principal(username="x", role="regulator", department="samr")):
        statement = _can_read_statement(who)
        assert can_read(session, who, world.ent1) is bool(session.scalar(statement, {"subject": world.ent1}))


def test_driver_errors_are_sqlalchemys_errors(session):
    missing = select(column("a")).select_from(table("no_such_table")).where(column("a") == bindparam("a"))
    connection = session.connection()
    with pytest.raises(exc.DBAPIError) as raised:
        compiled_for(missing, connection.dialect).rows(connection, {"a": 1})
    assert "no_such_table" in str(raised.value)
    if connection.dialect.name == "sqlite":  # e.g. "database is locked": what the event-loop read falls back on
        assert isinstance(raised.value, exc.OperationalError)
    session.rollback()


def test_every_enterprise_shares_one_coverage_statement(session, world):
    _can_read_statement.cache_clear()
    own, other = (Principal(username=u, role="enterprise", uscc=c) for u, c in (("a", world.ent1), ("b", world.ent2)))
    assert can_read(session, own, world.ent1) and not can_read(session, own, world.ent2)
    assert can_read(session, other, world.ent2)
    assert _can_read_statement.cache_info().currsize == 1  # not one statement (and compile) per enterprise
    ghost = Principal(username="c", role="enterprise", uscc="9" * 18)
    assert not can_read(session, ghost, ghost.uscc)  # its own code, but no such subject
    assert not can_read(session, Principal(username="d", role="enterprise"), world.ent1)  # no code bound


def test_many_rows_inserted_on_the_driver_are_stored_as_sqlalchemy_stores_them(session, world):
    import datetime as dt

    from sqlalchemy import delete, insert

    from serving.db.driver import insert_many
    from serving.db.tables import RiskWarning

    at = dt.datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = [dict(uscc=world.ent1, cause=cause, department=None, status="open", message="信用等级由 A 降为 C",
                 record_ids=["R1", "记录2"], evidence={"old_probability": 0.1, "as_of": "2026-09-30", "none": None},
                 raised_on=dt.date(2026, 12, 7), raised_at=at, updated_at=at, open_key=f"{world.ent1}:{cause}")
            for cause in ("grade_drop", "probability_rise")]
    connection = session.connection()

    def stored() -> list[tuple]:
        session.expire_all()
        return [tuple(getattr(w, c) for c in ("uscc", "cause", "department", "status", "message", "record_ids",
                                               "evidence", "raised_on", "raised_at", "updated_at", "open_key"))
                for w in session.scalars(select(RiskWarning).order_by(RiskWarning.cause))]

    connection.execute(delete(RiskWarning))
    connection.execute(insert(RiskWarning), rows)
    expected = stored()
    connection.execute(delete(RiskWarning))
    insert_many(connection, RiskWarning.__table__, rows)
    assert stored() == expected and len(expected) == 2
    with pytest.raises(exc.IntegrityError):  # the driver's error, as SQLAlchemy raises it
        insert_many(connection, RiskWarning.__table__, rows)
    session.rollback()
