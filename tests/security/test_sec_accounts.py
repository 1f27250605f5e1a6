"""Accounts: no password in the repository opens a demo account, and weak passwords are refused
when users are created (strictest for admins)."""

from __future__ import annotations

import stat

import pytest
from sec_fixtures import REPO

from serving.db.session import iter_session


def _demo_accounts(database_url, settings):
    from serving.demo import seed_demo_users

    session = next(iter_session(database_url))
    try:
        return seed_demo_users(session, settings)
    finally:
        session.close()


def test_demo_passwords_are_random_per_install_and_kept_in_a_private_file(tmp_path, settings, capsys):
    from serving.db.migrate import upgrade

    database_url = f"sqlite:///{tmp_path / 'fresh.db'}"  # an install without users yet
    upgrade(database_url)
    first = {user: password for user, password, *_ in _demo_accounts(database_url, settings)}
    printed = capsys.readouterr().out
    assert all(password in printed for password in first.values())  # printed once, at creation

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = {user: password for user, password, *_ in
             _demo_accounts(other_url, settings.model_copy(update={"keys_dir": tmp_path / "other-keys"}))}
    assert first.keys() == other.keys()
    for user in first:
        assert first[user] != other[user], "another install gets other passwords"
        assert user not in first[user] and len(first[user]) >= 16
    written = [p for p in settings.keys_dir.iterdir() if all(pw in p.read_text() for pw in first.values())]
    assert written and stat.S_IMODE(written[0].stat().st_mode) == 0o600
    # no demo password appears anywhere in the repository
    tracked = [p for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
               and "var" not in p.parts and p.suffix in {".py", ".md", ".toml", ".html", ".txt"}]
    for path in tracked:
        text = path.read_text(errors="replace")
        assert not any(pw in text for pw in first.values()), path


def test_demo_accounts_can_log_in_with_the_printed_password(tmp_path, settings):
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.db.migrate import upgrade

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"  # an install without users yet
    upgrade(fresh)
    settings = settings.model_copy(update={"database_url": fresh})
    accounts = _demo_accounts(fresh, settings)
    client = TestClient(create_app(settings))
    user, password = next((u, p) for u, p, role, _ in accounts if role == "admin")
    r = client.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("role", "extra", "username", "password"), [
    ("admin", {}, "admin2", "0000000000"),                          # the admin password
    ("admin", {}, "admin3", "0000000000000000"),                    # long but trivial
    ("admin", {}, "admin4", "password123456"),                      # a common password
    ("regulator", {"department": "samr"}, "reg_new", "reg_new"),    # the user name
    ("regulator", {"department": "samr"}, "reg_new2", "reg_new2reg_new2"),
    ("regulator", {"department": "samr"}, "reg_new3", "short-pw1"),  # under 12 characters
    ("analyst", {}, "analyst2", "qwertyuiopasdf"),                  # keyboard walk
])
def test_weak_passwords_are_refused_at_user_creation(client, auth, role, extra, username, password):
    r = client.post("/api/v1/admin/users", headers=auth("admin"),
                    json={"username": username, "password": password, "role": role, **extra})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "password"


def test_a_strong_password_is_accepted_and_admins_need_a_stronger_one(client, auth):
    staff = "Lantern-orbit-93"[:15]  # 15 characters: enough for staff, too short for an admin
    r = client.post("/api/v1/admin/users", headers=auth("admin"),
                    json={"username": "reg_ok", "password": staff, "role": "regulator", "department": "samr"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/admin/users", headers=auth("admin"),
                    json={"username": "admin_weak", "password": staff, "role": "admin"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    strong = "Wq8#mZ1!vB6@rT3$yH9^kL2&"
    r = client.post("/api/v1/admin/users", headers=auth("admin"),
                    json={"username": "admin_ok", "password": strong, "role": "admin"})
    assert r.status_code == 201, r.text


def test_the_cli_applies_the_same_password_policy(tiers_cli):
    code, _out, err = tiers_cli("users", "create", "--username", "admin9", "--role", "admin",
                                "--password", "0000000000")
    assert code == 2 and "password" in err
