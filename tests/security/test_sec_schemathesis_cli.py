"""The whole API fuzzed by schemathesis's own command line (as an outside tester runs it) against
a real ``tiers serve``: every check, no server error, no answer outside its declared schema."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiers_serve
from srv_fixtures import principal

from serving.security import create_access_token

pytestmark = pytest.mark.slow


def test_schemathesis_cli_finds_no_server_error_and_no_schema_violation(tmp_path, database_url):
    key = secrets.token_urlsafe(48)
    token, _ = create_access_token(principal("admin"), key, 60)
    cli = Path(sys.executable).with_name("schemathesis")
    with tiers_serve(tmp_path, database_url, workers=1, TIERS_JWT_SECRET=key) as base:
        proc = subprocess.run(
            [str(cli), "run", f"{base}/openapi.json", "--checks", "all", "--experimental", "openapi-3.1",
             "-H", f"Authorization: Bearer {token}", "--hypothesis-max-examples", "12", "--hypothesis-seed", "14",
             "--hypothesis-suppress-health-check", "all", "--request-timeout", "30000", "--no-color"],
            capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert "Server error" not in proc.stdout and "schema" not in proc.stdout.lower().split("summary")[-1], report
