"""信用承诺事项目录: read through the one TOML loader and checked against the catalogue policy."""

from __future__ import annotations

import datetime as dt

import pytest

from features.catalogue import default_policy
from features.commitments import CommitmentCatalogueError, load_commitment_catalogue


def test_the_packaged_catalogue_has_the_four_kinds_and_breaches_the_policy_counts():
    catalogue = load_commitment_catalogue()
    assert {m.kind for m in catalogue.matters} == {"审批替代型", "主动公示型", "行业自律型", "信用修复型"}
    policy = default_policy()
    for matter in catalogue.matters:
        for breach in matter.breaches.values():
            rule = policy.kinds[breach.record_kind]
            assert rule.polarity == "negative" and rule.repairable  # counted, and repaired by the policy's rules
        assert matter.public == (matter.kind == "主动公示型")
        assert matter.due_on(dt.date(2026, 1, 1)) == dt.date(2026, 1, 1) + dt.timedelta(days=matter.due_days)


MATTER = """version = "t"
[[matters]]
code = "m-one"
kind = "主动公示型"
title = "测试承诺"
department = "samr"
due_days = 30
template = "本企业承诺遵守法律法规。"
kept_when = "期内无违法"
made = {{ record_kind = "commitment_made" }}
kept = {{ record_kind = "commitment_kept" }}
breaches.x = {{ record_kind = "{breach}" }}
"""


@pytest.mark.parametrize("breach,message", [("commitment_kept", r"matters\[m-one\]\.breaches\.x\.record_kind.*negative"),
                                            ("no_such_kind", r"breaches\.x\.record_kind = 'no_such_kind': not a kind")])
def test_a_breach_must_become_a_negative_kind_of_the_policy(tmp_path, breach, message):
    path = tmp_path / "c.toml"
    path.write_text(MATTER.format(breach=breach), encoding="utf-8")
    with pytest.raises(CommitmentCatalogueError, match=message):
        load_commitment_catalogue(path)


def test_a_wrong_kind_is_refused_with_its_field(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(MATTER.format(breach="commitment_broken").replace("主动公示型", "随便型"), encoding="utf-8")
    with pytest.raises(CommitmentCatalogueError, match=r"matters\.0\.kind"):
        load_commitment_catalogue(path)


def test_a_matter_code_given_twice_is_refused_naming_it(refused_toml):
    once = MATTER.format(breach="commitment_broken")
    refused_toml(load_commitment_catalogue, CommitmentCatalogueError, once + once[once.index("[[matters]]"):],
                 r"matter codes \['m-one'\] appear more than once")
