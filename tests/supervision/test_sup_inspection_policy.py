"""Policy tables and the ratio feed: validation, overrides, floor, caps, HTTP feed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.draw import STRATA, ratio_to_ppm
from supervision.inspection_policy import IMPLIED_BEFORE_ADDED, PolicyError, load_policy, policy_from_dict
from supervision.ratios import HttpRatioFeed, InspectionRatiosOut, RatioFeed, inspection_ratios

AS_OF = dt.date(2026, 9, 30)


def _policy_dict(**defaults) -> dict:
    base = load_policy().model_dump(mode="json")
    base["defaults"].update(defaults)
    return base


def test_default_policy_is_the_lindian_bands() -> None:
    rules = load_policy().rules_for("market", "MKT-01")
    r = rules.grade_ratios
    assert r["A"] <= 0.05 and 0.05 <= r["B"] <= 0.20 and 0.21 <= r["C"] <= 0.60 and 0.61 <= r["D"] <= 1.0
    assert rules.floor_ratio > 0
    assert r["A"] == rules.floor_ratio  # 无事不扰: A without a lead only at the floor
    assert rules.floor_ratio <= rules.a_with_lead_ratio <= 0.05  # A with a lead stays in A's band


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grade_ratios": {"A": 0.01, "B": 0.5, "C": 0.4, "D": 0.8}}, "decrease with risk"),
        ({"floor_ratio": 0.02}, "floor"),
        ({"grade_ratios": {"A": 0.01, "B": 0.1, "C": 0.4}}, "missing grades"),
        ({"floor_ratio": 0}, "floor_ratio"),
        ({"publication_day_basis": "lunar"}, "publication_day_basis"),
    ],
)
def test_bad_policies_name_field_and_rule(change: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy_from_dict(_policy_dict(**change))


def test_overrides_merge_item_over_department(tmp_path: Path) -> None:
    data = _policy_dict()
    data["departments"] = {"market": {"general_cap": 0.08}}
    data["items"] = {"MKT-01": {"grade_ratios": {"D": 1.0}, "key_item": True}}
    policy = policy_from_dict(data)
    rules = policy.rules_for("market", "MKT-01")
    assert rules.general_cap == 0.08 and rules.grade_ratios["D"] == 1.0 and rules.key_item
    assert policy.rules_for("fire", "X").general_cap == load_policy().defaults.general_cap
    assert policy.policy_hash() != load_policy().policy_hash()
    # A bad override fails at load time, not mid-draw
    data["items"]["MKT-02"] = {"grade_ratios": {"C": 0.03}}  # below B: risk order broken
    with pytest.raises(PolicyError, match="MKT-02"):
        policy_from_dict(data)


def test_load_policy_from_path_and_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy("no-such-policy")


counts_strategy = st.fixed_dictionaries({s: st.integers(0, 20_000) for s in STRATA})


@given(counts=counts_strategy, key_item=st.booleans(), cap=st.floats(0.01, 0.5))
@settings(max_examples=80, deadline=None)
def test_ratios_respect_floor_and_cap(counts: dict, key_item: bool, cap: float) -> None:
    data = _policy_dict(general_cap=cap)
    policy = policy_from_dict(data)
    rules = policy.rules_for("market", "MKT-01", key_item=key_item)
    out = inspection_ratios(counts, rules=rules, policy=policy, department="market", item="MKT-01", as_of=AS_OF,
                            model_version="v1")
    floor_ppm = round(rules.floor_ratio * 1e6)
    for s in out.strata:
        assert s.ratio_ppm >= floor_ppm  # 不免抽
        assert s.ratio <= s.configured_ratio
        if s.pool_size:
            assert s.expected_inspections >= 1
    assert out.expected_inspections == sum(s.expected_inspections for s in out.strata)
    if key_item:
        assert not out.cap_applied and out.general_cap is None
    else:
        all_at_floor = all(s.ratio_ppm == floor_ppm for s in out.strata)
        cap_k = out.pool_size * ratio_to_ppm(cap) // 10**6  # the cap is applied in ppm, like every ratio
        assert out.expected_inspections <= cap_k or all_at_floor
    # ratios never invert the risk order
    by = {s.stratum: s.ratio for s in out.strata}
    assert by["A"] <= by["B"] <= by["C"] <= by["D"]


def test_http_feed_returns_what_the_service_computes() -> None:
    policy = load_policy()
    rules = policy.rules_for("market", "MKT-01")
    served = inspection_ratios(
        {"A": 600, "B": 250, "C": 80, "D": 20},
        rules=rules,
        policy=policy,
        department="market",
        item="MKT-01",
        as_of=AS_OF,
        model_version="v1",
    )
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(
            path=request.url.path, params=dict(request.url.params), auth=request.headers.get("authorization")
        )
        return httpx.Response(200, content=served.model_dump_json())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        feed = HttpRatioFeed(base_url="http://tiers.test/", token="t0k", client=client)
        assert isinstance(feed, RatioFeed)
        got = feed.inspection_ratios(department="market", item="MKT-01", as_of=AS_OF)
    assert got == served
    assert seen == {
        "path": "/api/v1/inspection-ratios",
        "params": {"department": "market", "item": "MKT-01", "as_of": "2026-09-30"},
        "auth": "Bearer t0k",
    }

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        machine = HttpRatioFeed(base_url="http://tiers.test", api_key="k3y", client=client)
        machine.client.event_hooks["request"] = [lambda r: seen.update(key=r.headers.get("x-api-key"))]
        assert machine.inspection_ratios(department="market", item="MKT-01", as_of=AS_OF) == served
    assert seen["key"] == "k3y" and seen["auth"] is None  # a machine sends its key, never a bearer header

    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))) as client:
        failing = HttpRatioFeed(base_url="http://tiers.test", client=client)
        with pytest.raises(ConnectionError, match="inspection-ratios"):
            failing.inspection_ratios(department="market", item="MKT-01", as_of=AS_OF)
    assert InspectionRatiosOut.model_validate_json(served.model_dump_json()) == served


# A policy as committed before ``lead_window_days`` existed, and its hash computed then.
PRE_LEAD_WINDOW_POLICY = {
    "name": "compat",
    "version": "2026-01",
    "defaults": {
        "floor_ratio": 0.01, "general_cap": 0.1, "a_with_lead_ratio": 0.05, "max_inspections_12m": 2,
        "inspectors_per_subject": 2, "recuse_same_district": False, "ungraded_grade": "B",
        "publication_days": 20, "publication_day_basis": "natural",
        "grade_ratios": {"A": 0.01, "B": 0.05, "C": 0.6, "D": 1.0},
    },
    "departments": {"market": {"general_cap": 0.08}},
    "items": {"MKT-01": {"key_item": True}},
}
PRE_LEAD_WINDOW_HASH = "0887a52dbef6c98d26fef818e494469f10ae2c3fc8430bfab25d295aefdcf55e"


def test_policy_hash_of_plans_committed_before_a_rule_was_added_is_unchanged() -> None:
    """An embedded policy from before ``lead_window_days`` still matches its committed hash."""
    old = policy_from_dict(PRE_LEAD_WINDOW_POLICY)
    # the window every earlier plan used; a new default must not change how old plans read
    assert old.defaults.lead_window_days == IMPLIED_BEFORE_ADDED["lead_window_days"] == 365
    assert old.policy_hash() == PRE_LEAD_WINDOW_HASH
    # ... and the new rule still counts whenever it says something
    changed = {**PRE_LEAD_WINDOW_POLICY, "defaults": {**PRE_LEAD_WINDOW_POLICY["defaults"], "lead_window_days": 90}}
    assert policy_from_dict(changed).policy_hash() != PRE_LEAD_WINDOW_HASH
    for scope, key in (("departments", "market"), ("items", "MKT-01")):
        override = {**PRE_LEAD_WINDOW_POLICY[scope], key: {**PRE_LEAD_WINDOW_POLICY[scope][key], "lead_window_days": 365}}
        assert policy_from_dict({**PRE_LEAD_WINDOW_POLICY, scope: override}).policy_hash() != PRE_LEAD_WINDOW_HASH
