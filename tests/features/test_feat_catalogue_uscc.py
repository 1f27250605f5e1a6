"""Catalogue policy: dated publicity rules, repair eligibility, sector overrides, validation."""

from __future__ import annotations

from datetime import date

import pytest

from features.catalogue import PolicyError, default_policy, load_policy, publicity_window, repair_eligible_on

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def test_publicity_windows_follow_the_rules_in_force_on_the_decision_date():
    assert publicity_window("admin_penalty", "general", date(2026, 5, 1)) == (date(2026, 8, 1), date(2027, 5, 1))
    assert publicity_window("admin_penalty", "serious", date(2026, 5, 1)) == (date(2027, 5, 1), date(2029, 5, 1))
    # 2019 rules: serious from 6 months
    assert publicity_window("admin_penalty", "serious", date(2025, 5, 1)) == (date(2025, 11, 1), date(2028, 5, 1))
    # minor penalties decided from 2026-04-01 are not published
    d = date(2026, 4, 1)
    assert publicity_window("admin_penalty", "minor", d) == (d, d)
    # month arithmetic clips to month end
    assert publicity_window("admin_penalty", "general", date(2024, 11, 30))[0] == date(2025, 2, 28)


def test_repair_eligibility():
    p = default_policy()
    assert repair_eligible_on({"kind": "admin_penalty", "severity": "serious", "decision_date": "2026-05-01"}) \
        == date(2027, 5, 1)
    assert p.repair_eligible_on({"kind": "admin_penalty", "severity": "minor", "decision_date": "2026-05-01"}) is None
    assert p.repair_eligible_on({"kind": "admin_penalty", "severity": "general", "decision_date": "2025-01-01",
                                 "exemption": "force_majeure"}) is None
    assert p.repair_eligible_on({"kind": "admin_reward", "decision_date": "2025-01-01"}) is None


def test_sector_override_merges_only_what_it_names():
    p = default_policy()
    h = p.for_sector("H")
    assert h.kinds["complaint"].weight != p.kinds["complaint"].weight
    assert h.kinds["admin_penalty"] == p.kinds["admin_penalty"]
    assert p.for_sector("C") is p
    assert h.version.endswith("sector-H")


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda s: s.replace("decay_half_life_days = 365", "decay_half_life_days = -1"), "decay_half_life_days"),
    (lambda s: s.replace("min_months = 12, max_months = 36", "min_months = 40, max_months = 36"), "min_months 40"),
    (lambda s: s.replace("[sectors.H]", "[sectors.Z]"), "GB/T 4754"),
    (lambda s: s.replace("kinds.complaint = { weight = 0.6", "kinds.complaint = { weight = -2"), "sector H"),
    (lambda s: s + "\nunexpected_switch = true\n", "unexpected_switch"),
    (lambda s: s.replace('polarity = "positive"', 'polarity = "good"', 1), "polarity"),
    (lambda s: s.replace("version = ", "version == "), "not valid TOML"),
])
def test_invalid_policy_files_fail_with_the_field_named(tmp_path, edit, needle):
    from importlib import resources

    text = resources.files("features.catalogue").joinpath("default.toml").read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    path.write_text(edit(text), encoding="utf-8")
    with pytest.raises(PolicyError, match="policy") as info:
        load_policy(path)
    assert needle in str(info.value)


def test_policy_tables_cover_every_severity_and_kind():
    p = default_policy()
    table = p.publicity_table()
    assert set(table["severity"]) == {"minor", "general", "serious"}
    assert (table["min_months"] <= table["max_months"]).all()
    assert set(p.kind_table()["kind"]) == set(p.kinds)
    assert {"admin_penalty", "repair", "revocation", "list_serious_dishonesty"} <= p.legal_basis_kinds
