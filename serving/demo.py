"""Demo accounts for ``make demo`` (development only)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc as stdnum_uscc

from serving.db.models import Subject, User
from serving.errors import NotAllowed
from serving.schemas import UserCreate
from serving.services.users import create_user
from serving.settings import Settings

DEMO_PASSWORD_SUFFIX = "-demo-2026"


def seed_demo_users(session: Session, settings: Settings, *,
                    enterprise_uscc: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """Create (or keep) one account per role with known passwords; refuses outside development.

    The enterprise account is bound to ``enterprise_uscc`` (default: the first subject in the
    database) and the sector account to that subject's section, so the demo shows real data.
    Returns (username, password, role, scope) and prints them.
    """
    if not settings.is_development:
        raise NotAllowed("demo accounts with known passwords exist only in development "
                         f"(TIERS_ENVIRONMENT={settings.environment!r})")
    chosen = select(Subject).where(Subject.uscc == enterprise_uscc) if enterprise_uscc else None
    first = (session.scalars(chosen).first() if chosen is not None else None) or \
        session.scalars(select(Subject).order_by(Subject.uscc)).first()
    # before the pipeline ran: a valid placeholder code, so the account can be created
    enterprise_uscc = first.uscc if first else "91320102MA1XXXXXX" + stdnum_uscc.calc_check_digit("91320102MA1XXXXXX")
    section = (first.industry if first and first.industry else "C")
    accounts = [
        ("admin", "admin", {}),
        ("regulator", "regulator", {"department": "samr"}),
        ("sector", "sector", {"section": section}),
        ("analyst", "analyst", {}),
        ("enterprise", "enterprise", {"uscc": enterprise_uscc}),
    ]
    out: list[tuple[str, str, str, str | None]] = []
    for username, role, scope in accounts:
        password = username + DEMO_PASSWORD_SUFFIX
        if session.scalars(select(User.id).where(User.username == username)).first() is None:
            create_user(session, UserCreate(username=username, password=password, role=role, **scope))
        out.append((username, password, role, next(iter(scope.values()), None)))
    for row in out:
        print("demo account: user={} password={} role={} scope={}".format(*row))
    return out
