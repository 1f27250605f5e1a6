"""The scheduler's HTTP ratio feed against a real uvicorn: a machine with an API key, a person with a token."""

from __future__ import annotations

import datetime as dt

import pytest
from srv_fixtures import principal, uvicorn_server
from test_srv_plans_flow import AS_OF, store_graded_city, write_scheduler_data

from serving.db.session import dispose_engine, iter_session
from serving.security import create_access_token
from serving.services import plans as plan_service
from serving.services.users import create_api_key
from supervision.ratios import HttpRatioFeed

pytestmark = pytest.mark.slow  # starts a uvicorn process (~2–5 s)

JWT_SECRET = "ratio-feed-test-secret-0123456789abcdef"


def test_http_ratio_feed_authenticates_with_api_key_or_token(database_url, tmp_path) -> None:
    session = next(iter_session(database_url))
    store_graded_city(session)
    _, api_key = create_api_key(session, "admin", "双随机平台")
    data_dir = write_scheduler_data(tmp_path / "data")
    as_of = dt.date.fromisoformat(AS_OF)
    in_process = plan_service.inspection_ratios(session, data_dir, plan_service.load_named_policy("default"),
                                                department="samr", item="SAMR-03", as_of=as_of)
    session.close()
    dispose_engine(database_url)
    token, _ = create_access_token(principal("reg_samr"), JWT_SECRET, 30)
    query = dict(department="samr", item="SAMR-03", as_of=as_of)

    with uvicorn_server(tmp_path, database_url, TIERS_DATA_DIR=str(data_dir), TIERS_JWT_SECRET=JWT_SECRET) as base:
        by_key = HttpRatioFeed(base_url=base, api_key=api_key).inspection_ratios(**query)
        by_token = HttpRatioFeed(base_url=base, token=token).inspection_ratios(**query)
        # a wrong key, or no credentials, is refused by the server and reported with the URL
        for refused in (HttpRatioFeed(base_url=base, api_key=api_key[:-1] + "x"), HttpRatioFeed(base_url=base)):
            with pytest.raises(ConnectionError, match="401"):
                refused.inspection_ratios(**query)
    assert by_key == by_token == in_process
    assert by_key.pool_size > 0 and by_key.model_version == "general-v3"


def test_http_ratio_feed_refuses_two_credentials() -> None:
    with pytest.raises(ValueError, match="not both"):
        HttpRatioFeed(base_url="http://tiers.test", token="t", api_key="k")
