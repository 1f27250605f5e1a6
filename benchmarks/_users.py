"""Bearer headers for a benchmark's caller: the user is created in the benchmark's database first,
since the service refuses a token whose user does not exist (or no longer has that scope), and one
that lives longer than its TTL (``Settings.jwt_ttl_minutes``, 60 by default)."""

from __future__ import annotations

import secrets

from serving.db.session import dispose_engine, iter_session
from serving.schemas import UserCreate
from serving.security import Principal, create_access_token
from serving.services.users import create_user, get_user


def bearer_for(database_url: str, principal: Principal, secret: str, ttl_minutes: int = 60) -> dict[str, str]:
    session = next(iter_session(database_url))
    try:
        if get_user(session, principal.username) is None:
            create_user(session, UserCreate(username=principal.username, password=secrets.token_urlsafe(16),
                                            role=principal.role, department=principal.department,
                                            section=principal.section, uscc=principal.uscc))
    finally:
        session.close()
        dispose_engine(database_url)
    token, _ = create_access_token(principal, secret, ttl_minutes)
    return {"Authorization": f"Bearer {token}"}
