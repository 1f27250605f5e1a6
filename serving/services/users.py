"""Users, API keys and login (limited per account and per address: ``serving.services.logins``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.db.tables import ApiKey, RevokedToken, User
from serving.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    UnknownDepartment,
)
from serving.labels import department_names
from serving.schemas import UserCreate
from serving.security import (
    Principal,
    api_key_matches,
    api_key_prefix,
    dummy_password_hash,
    hash_password,
    new_api_key,
    password_problem,
    verify_password,
)
from serving.services import logins
from serving.services.logins import LoginLimits


def _scope_problem(body: UserCreate) -> tuple[str, str] | None:
    needed = {"regulator": "department", "sector": "section", "enterprise": "uscc"}.get(body.role)
    for field in ("department", "section", "uscc"):
        value = getattr(body, field)
        if field == needed and not value:
            return field, f"role {body.role!r} requires {field}"
        if field != needed and value:
            return field, f"role {body.role!r} takes no {field} (got {value!r})"
    return None


def create_user(session: Session, body: UserCreate, *, data_dir: str | Path | None = None) -> User:
    """Create a user with exactly the scope its role needs and a password the policy accepts
    (``security.password_problem``); the password is stored argon2-hashed. A department must be one
    of the catalogue's (``serving.labels.department_names`` of ``data_dir``): a regulator of an
    unknown department would see nothing, silently."""
    problem = _scope_problem(body)
    if problem:
        raise InvalidInput(problem[1], field=problem[0])
    if body.department and body.department not in department_names(data_dir):
        raise UnknownDepartment(f"department {body.department!r} is not in the department catalogue",
                                field="department", zh=f"部门：「{body.department}」不是已登记的部门，请从列表中选择")
    weak = password_problem(body.password, username=body.username, role=body.role,
                            other_inputs=tuple(filter(None, [body.display_name])))
    if weak:
        raise InvalidInput(f"password {weak}", field="password")
    if session.scalars(select(User.id).where(User.username == body.username)).first() is not None:
        raise Conflict(f"username {body.username!r} is taken", field="username")
    user = User(username=body.username, password_hash=hash_password(body.password), role=body.role,
                department=body.department, section=body.section, uscc=body.uscc,
                display_name=body.display_name, active=True)
    session.add(user)
    session.commit()
    return user


def principal_of(user: User, kind: str = "person") -> Principal:
    return Principal(username=user.username, role=user.role, kind=kind,  # type: ignore[arg-type]
                     department=user.department, section=user.section, uscc=user.uscc)


def authenticate(session: Session, username: str, password: str, client_ip: str, *, limits: LoginLimits,
                 now: dt.datetime | None = None) -> User:
    """The active user with these credentials, within the login limits (``serving.services.logins``):
    a try during a back-off is refused with 429 and ``Retry-After`` before any password check."""
    for field, value in (("username", username), ("password", password)):
        if any(ord(c) < 32 for c in value):
            raise InvalidInput(f"{field} must not contain control characters", field=field,
                               zh=f"{'用户名' if field == 'username' else '密码'}不能包含控制字符")
    now = now or dt.datetime.now(dt.UTC)
    address = logins.address_key(client_ip)
    account = username[:80]  # as stored (no user name is longer); a longer one fails like any unknown one
    # a cheap read first: a refused try (hammering during a back-off) writes nothing
    wait = logins.wait_s(session, account, address, limits, now)
    if wait <= 0:
        attempt = logins.begin_attempt(session, account, address, now)
        wait = logins.wait_s(session, account, address, limits, now, before_id=attempt.id)  # a concurrent try won
        if wait > 0:
            logins.end_attempt(session, attempt, "refused", now)
    if wait > 0:
        raise logins.held_back("too_many_logins", wait, field="username")
    user = session.scalars(select(User).where(User.username == username)).first()
    # verify even for unknown users so response time does not reveal which usernames exist
    valid = verify_password(password, user.password_hash if user else dummy_password_hash())
    ok = valid and user is not None and user.active
    logins.end_attempt(session, attempt, "succeeded" if ok else "failed", now)
    if not ok:
        raise NotAuthenticated("Wrong username or password.", field="password", zh="用户名或密码错误。")
    return user


def create_api_key(session: Session, username: str, name: str) -> tuple[ApiKey, str]:
    """A new API key for a (machine) user; returns the row and the key, shown only once."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user {username!r}", field="username")
    key, prefix, key_hash = new_api_key()
    row = ApiKey(user_id=user.id, name=name, prefix=prefix, key_hash=key_hash)
    session.add(row)
    session.commit()
    return row, key


def principal_for_api_key(session: Session, key: str) -> Principal | None:
    row = session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(
        ApiKey.prefix == api_key_prefix(key), ApiKey.revoked.is_(False), User.active)).first()
    if row is None or not api_key_matches(key, row[0].key_hash):
        return None
    return principal_of(row[1], kind="machine")


API_KEY_ACCOUNT = logins.API_KEY_ACCOUNT  # the account a failed API key is counted under


def api_key_principal(session: Session, key: str, client_ip: str, *, limits: LoginLimits,
                      now: dt.datetime | None = None) -> Principal:
    """The machine principal of a valid API key. A key that is not one (unknown, revoked, its user
    inactive) is a failed try from the caller's address, in that address's bucket of API keys
    (``logins.address_wait_s(api_keys=True)``: its own count and back-off, apart from the
    passwords'); during the back-off it is refused with 429, unrecorded.

    A valid key is never refused by the failures of others on its address: its 256 bits make
    guessing futile, so the back-off is there to leave a trace and slow a scanner, not to protect
    the key, and must not let an attacker behind the same NAT stop a department's system."""
    principal = principal_for_api_key(session, key)
    if principal is not None:
        return principal
    now = now or dt.datetime.now(dt.UTC)
    address = logins.address_key(client_ip)
    wait = logins.address_wait_s(session, address, limits, now, api_keys=True)
    if wait <= 0:
        attempt = logins.begin_attempt(session, API_KEY_ACCOUNT, address, now)
        logins.end_attempt(session, attempt, "failed", now)
        raise NotAuthenticated("unknown or revoked API key", headers={"WWW-Authenticate": "ApiKey"},
                               zh="API 密钥无效或已被吊销。")
    raise logins.held_back("too_many_api_keys", wait)


def person_is_current(session: Session, principal: Principal) -> bool:
    """Whether a person's access token still stands: the user is active, has the role and scope the
    token carries, and the token was not ended by a logout."""
    user = get_user(session, principal.username)
    if user is None or not user.active or principal_of(user) != principal.without_credential():
        return False
    if user.sessions_valid_after is not None and (
            principal.issued_at is None or principal.issued_at < _utc(user.sessions_valid_after).timestamp()):
        return False
    return session.get(RevokedToken, principal.token_id) is None


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def revoke_token(session: Session, principal: Principal, expires_at: dt.datetime,
                 now: dt.datetime | None = None) -> None:
    """End one access token before its expiry (logout); rows of tokens expired anyway are purged."""
    now = now or dt.datetime.now(dt.UTC)
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    if principal.token_id and session.get(RevokedToken, principal.token_id) is None:
        session.add(RevokedToken(token_id=principal.token_id, username=principal.username,
                                 expires_at=expires_at, revoked_at=now))
    try:
        session.commit()
    except IntegrityError:  # the same token logged out twice at once (a double click): done either way
        session.rollback()


def set_active(session: Session, username: str, active: bool) -> User:
    """Activate or deactivate a user: a deactivated user cannot log in, and their tokens and API
    keys stop working (within the credential cache's TTL)."""
    user = get_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}", field="username")
    if user.active and not active:
        user.sessions_valid_after = dt.datetime.now(dt.UTC)
    user.active = active
    session.commit()
    return user


def revoke_api_key(session: Session, prefix: str) -> ApiKey:
    """Revoke the API key with this prefix (keys are never deleted: the record stays)."""
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None:
        raise NotFound(f"no API key with prefix {prefix!r}", field="prefix")
    row.revoked = True
    session.commit()
    return row


def reset_password(session: Session, username: str, password: str) -> User:
    """Set a new password (an admin's reset) under the same policy as `create_user`; the user's
    sessions end with it (tokens issued before are refused), as on deactivation."""
    user = get_user(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}", field="username")
    weak = password_problem(password, username=user.username, role=user.role,
                            other_inputs=tuple(filter(None, [user.display_name])))
    if weak:
        raise InvalidInput(f"password {weak}", field="password")
    user.password_hash = hash_password(password)
    user.sessions_valid_after = dt.datetime.now(dt.UTC)
    session.commit()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def usernames_matching(session: Session, words: str) -> list[str]:
    """The usernames of the people ``words`` names as the user list shows them: part of the
    username (any case) or of the 姓名 (display name)."""
    words = words.strip()
    if not words:
        return []
    return list(session.scalars(select(User.username).where(
        func.lower(User.username).contains(words.lower(), autoescape=True)
        | User.display_name.contains(words, autoescape=True))))


def display_names(session: Session, usernames: set[str]) -> dict[str, str]:
    """username → 姓名 of those of ``usernames`` that have one."""
    if not usernames:
        return {}
    return {u: n for u, n in session.execute(select(User.username, User.display_name).where(
        User.username.in_(sorted(usernames)), User.display_name.is_not(None))).tuples() if n}


def list_api_keys(session: Session) -> list[tuple[ApiKey, str]]:
    """Every API key (revoked ones too: keys are never deleted) with its user's name, newest first."""
    rows = session.execute(select(ApiKey, User.username).join(User, User.id == ApiKey.user_id)
                            .order_by(ApiKey.id.desc()))
    return [(key, username) for key, username in rows]


def get_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0
