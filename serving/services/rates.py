"""Per-user hourly limits on costly requests (plan creation, the inspection ratios) and on refusals
(``deps.refusal_allowed``: each is a query-log entry).

Every request that reaches the service's check counts, whatever its outcome afterwards: the
event is committed before the work starts, so a request that then fails (another department's
item, a duplicate id, missing data) has still spent one of the hour's allowance. Requests refused
by the limit itself (429) do not count, so the allowance comes back an hour after the oldest
counted request. The events are rows of ``rate_events`` (the limits hold across workers); rows
older than the window are deleted as new ones come in.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import String, delete, func, insert, literal, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from serving.db.tables import RateEvent
from serving.errors import TooManyAttempts
from serving.i18n import text

WINDOW = dt.timedelta(hours=1)


def spend(session: Session, *, action: str, actor: str, per_hour: int, what: str = "", field: str | None = None,
          text_key: str | None = None, now: dt.datetime | None = None) -> None:
    """Count one ``action`` of ``actor`` (committed at once), or raise `TooManyAttempts` with
    ``Retry-After`` when it already made ``per_hour`` of them in the last hour. ``what`` names
    the requests in the message ("plan requests"); ``text_key``: the message is instead the text
    catalogue's, in both languages (``{n}`` the limit, ``{s}`` the seconds to wait).

    Atomic, so concurrent requests never pass the limit together: the count and the event are one
    statement (``INSERT … SELECT … WHERE (SELECT count(*) …) < per_hour``), which SQLite runs
    under its one write lock; on PostgreSQL (where two such statements of READ COMMITTED
    transactions would each count the other's row out) the transaction first takes an advisory
    lock on the action and actor's hash, released at its commit. Before, a SELECT then an INSERT
    let 160 concurrent refusals under a cap of 100 pass 108 times."""
    now = now or dt.datetime.now(dt.UTC)
    since = now - WINDOW
    mine = (RateEvent.action == action, RateEvent.actor == actor, RateEvent.at > since)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_LOCK, {"key": f"rates:{action}:{actor}"})
    at = literal(now, RateEvent.__table__.c.at.type)
    counted = session.execute(insert(RateEvent.__table__).from_select(
        ["action", "actor", "at"],
        select(literal(action, String()), literal(actor, String()), at)
        .where(select(func.count()).select_from(RateEvent).where(*mine).scalar_subquery() < per_hour))
        .returning(RateEvent.__table__.c.id)).first()  # (a driver's rowcount of INSERT … SELECT is -1)
    if counted is not None:
        session.execute(delete(RateEvent).where(RateEvent.action == action, RateEvent.at <= since))
        session.commit()
        return
    count, oldest = session.execute(select(func.count(), func.min(RateEvent.at)).where(*mine)).one()
    session.rollback()
    if oldest is None:  # a limit of 0: nothing ever comes back
        wait = int(WINDOW.total_seconds())
    else:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)
        wait = max(1, math.ceil((oldest + WINDOW - now).total_seconds()))
    headers = {"Retry-After": str(wait)}
    if text_key is not None:
        raise TooManyAttempts(text(text_key, "en").format(n=per_hour, s=wait), field=field, headers=headers,
                              zh=text(text_key, "zh").format(n=per_hour, s=wait))
    raise TooManyAttempts(f"{actor!r} made {count} {what} in the last hour (at most {per_hour}); retry in "
                          f"{wait} s", field=field, headers=headers)


# one spender of an (action, actor) at a time, until its transaction ends (PostgreSQL)
_PG_LOCK = sql_text("SELECT pg_advisory_xact_lock(hashtext(:key))")
