"""Demo accounts for ``make demo`` (development only): one per role, with random passwords.

No password is in the repository: each install gets its own, printed once when the accounts are
made and kept in ``keys_dir/demo-accounts.txt`` (mode 0600) for the demo's user to look up.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc as stdnum_uscc

from serving.db.tables import Subject, User
from serving.errors import NotAllowed
from serving.keys import write_private
from serving.schemas import UserCreate
from serving.services.users import create_user
from serving.settings import Settings

DEMO_ACCOUNTS_FILE = "demo-accounts.txt"


def demo_accounts_path(settings: Settings):
    return settings.keys_dir / DEMO_ACCOUNTS_FILE


def seed_demo_users(session: Session, settings: Settings, *, enterprise_uscc: str | None = None,
                    sector_section: str | None = None) -> list[tuple[str, str | None, str, str | None]]:
    """Create (or keep) one account per role with a random password; refuses outside development.

    The enterprise account is bound to ``enterprise_uscc`` (default: the first subject in the
    database) and the sector account to ``sector_section`` (default: that subject's section; the
    demo passes the section it trained a champion and a challenger for), so the demo shows real data.
    Returns (username, password, role, scope): the password of an account made now, None for one
    that existed (its password was printed when it was made and is in ``demo_accounts_path``).
    Prints the passwords of the accounts it made, once.
    """
    if not settings.is_development:
        raise NotAllowed("demo accounts exist only in development "
                         f"(TIERS_ENVIRONMENT={settings.environment!r})")
    chosen = select(Subject).where(Subject.uscc == enterprise_uscc) if enterprise_uscc else None
    first = (session.scalars(chosen).first() if chosen is not None else None) or \
        session.scalars(select(Subject).order_by(Subject.uscc)).first()
    # before the pipeline ran: a valid placeholder code, so the account can be created
    enterprise_uscc = first.uscc if first else "91320102MA1XXXXXX" + stdnum_uscc.calc_check_digit("91320102MA1XXXXXX")
    section = sector_section or (first.industry if first and first.industry else "C")
    accounts = [
        ("admin", "admin", {}),
        ("regulator", "regulator", {"department": "samr"}),
        ("sector", "sector", {"section": section}),
        ("analyst", "analyst", {}),
        ("enterprise", "enterprise", {"uscc": enterprise_uscc}),
    ]
    out: list[tuple[str, str | None, str, str | None]] = []
    for username, role, scope in accounts:
        password = None
        if session.scalars(select(User.id).where(User.username == username)).first() is None:
            password = secrets.token_urlsafe(18)  # 144 random bits: the strongest grade of any policy
            create_user(session, UserCreate(username=username, password=password, role=role, **scope))
        out.append((username, password, role, next(iter(scope.values()), None)))
    made = [row for row in out if row[1] is not None]
    if made:
        _keep_passwords(settings, made)
        for row in made:
            print("demo account: user={} password={} role={} scope={}".format(*row))
        print(f"demo passwords kept in {demo_accounts_path(settings)} (mode 0600)")
    return out


def _keep_passwords(settings: Settings, made: list[tuple[str, str | None, str, str | None]]) -> None:
    """Add the accounts just made to the demo accounts file (0600), one tab-separated line each."""
    path = demo_accounts_path(settings)
    old = path.read_text(encoding="utf-8") if path.is_file() else \
        "# tiers demo accounts (development only): user, password, role, scope\n"
    lines = ["\t".join([user, password or "", role, scope or ""]) for user, password, role, scope in made]
    write_private(path, old + "\n".join(lines) + "\n")
