"""The whole API fuzzed by schemathesis's own command line (as an outside tester runs it) against
a real ``tiers serve``: every check, no server error, no answer outside its declared schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sec_fixtures import tiers_serve

from serving.db.session import iter_session
from serving.services.users import create_api_key

pytestmark = pytest.mark.slow


def test_schemathesis_cli_finds_no_server_error_and_no_schema_violation(tmp_path, database_url):
    # An admin's API key, given explicitly: schemathesis checks that each operation refuses the
    # request without it (its auth check knows API-key and HTTP schemes, not OAuth2's bearer; the
    # bearer path is fuzzed in-process by tests/serving/test_srv_schemathesis.py)
    session = next(iter_session(database_url))
    try:
        _row, api_key = create_api_key(session, "admin", "schemathesis")
    finally:
        session.close()
    cli = Path(sys.executable).with_name("schemathesis")
    # Schemathesis probes every operation with wrong keys from this one address; wrong API keys
    # count in their own per-address bucket, so past 20 the address waits and gets 429 where the check expects
    # 401. The back-off itself is tested in test_sec_login_limits; here the limit is set out of reach,
    # and so is the key's hourly cap on refusals (the admin's key is refused on the other roles'
    # routes many times: tests/serving/test_srv_refusal_cap.py tests the cap).
    with tiers_serve(tmp_path, database_url, workers=1, TIERS_LOGIN_FREE_FAILURES_PER_ADDRESS="10000",
                     TIERS_API_KEY_FREE_FAILURES_PER_ADDRESS="10000", TIERS_LOGIN_FREE_FAILURES_PER_ACCOUNT="1000",
                     TIERS_REFUSALS_PER_HOUR="100000") as base:
        proc = subprocess.run(
            [str(cli), "run", f"{base}/openapi.json", "--checks", "all", "--experimental", "openapi-3.1",
             "-H", f"X-API-Key: {api_key}", "--hypothesis-max-examples", "12", "--hypothesis-seed", "14",
             "--hypothesis-suppress-health-check", "all", "--request-timeout", "30000", "--no-color"],
            capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    (tmp_path.parent / "schemathesis-report.txt").write_text(proc.stdout + proc.stderr)
    report = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    for check in ("not_a_server_error", "status_code_conformance", "response_schema_conformance", "ignored_auth",
                  "content_type_conformance", "negative_data_rejection"):
        found = re.search(rf"{check}\s+(\d+) / (\d+) passed", proc.stdout)
        assert found and found.group(1) == found.group(2) and int(found.group(2)) > 100, (check, report)
