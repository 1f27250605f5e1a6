"""Property tests over the whole OpenAPI spec: no server error, no undeclared status code,
responses conform to their declared schemas."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from schemathesis.transports import RequestsTransport
from srv_fixtures import principal

from serving.keys import with_keys
from serving.security import create_access_token

schemathesis.experimental.OPEN_API_3_1.enable()


CHECKS = (not_a_server_error, status_code_conformance, response_schema_conformance)


@pytest.fixture
def api_schema(app):
    return schemathesis.from_asgi("/openapi.json", app)


schema = schemathesis.from_pytest_fixture("api_schema")


@pytest.fixture
def asgi_client(app):
    """One client, its lifespan entered once for the whole test: ``case.call_asgi`` opens a new
    client per call, so every generated call paid the app's start-up and shut-down (0.15 s each)."""
    from starlette_testclient import TestClient

    with TestClient(app) as client:
        yield client


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case, settings_for_case, asgi_client):
    response = RequestsTransport().send(case, session=asgi_client, base_url=case.get_full_base_url(),
                                        headers=settings_for_case(case))
    case.validate_response(response, checks=CHECKS)


@pytest.fixture
def settings_for_case(settings):
    """Authenticate each generated call as the role its route is for (admin otherwise)."""

    def headers(case) -> dict[str, str]:
        path = case.path
        username = ("reg_samr" if "/regulator/" in path else "sector_c" if "/sector/" in path
                    else "analyst" if "/analyst/" in path else "ent1" if "/subjects/" in path else "admin")
        token, _ = create_access_token(principal(username), with_keys(settings).jwt_key, 30)
        return {"Authorization": f"Bearer {token}"}

    return headers
