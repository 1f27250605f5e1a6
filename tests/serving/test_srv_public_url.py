"""The credit reports' QR codes point to the server that issued them: ``tiers serve --port N``
without TIERS_PUBLIC_URL gives its workers the address it listens on, never the default port."""

from __future__ import annotations

import pytest

from serving.cli.serve import public_url_for
from serving.settings import Settings


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", 8765, "http://127.0.0.1:8765"),
    ("0.0.0.0", 9000, "http://127.0.0.1:9000"),  # noqa: S104 -- the address of a wildcard bind, not a bind
    ("::", 9001, "http://127.0.0.1:9001"),
    ("localhost", 8000, "http://localhost:8000"),
    ("::1", 8080, "http://[::1]:8080"),
])
def test_unset_public_url_follows_the_listening_address(monkeypatch, host, port, expected):
    monkeypatch.delenv("TIERS_PUBLIC_URL", raising=False)
    url = public_url_for(Settings(), host, port)
    assert url == expected
    Settings(public_url=url)  # a valid setting for the workers that read it back


def test_a_configured_public_url_is_kept(monkeypatch):
    monkeypatch.setenv("TIERS_PUBLIC_URL", "https://credit.example.gov.cn")
    assert public_url_for(Settings(), "0.0.0.0", 9000)  # noqa: S104 -- not a bind == "https://credit.example.gov.cn"
