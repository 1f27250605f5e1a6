"""Plans end to end on a tiny city: counts per grade, joint visits, exclusions, verification, outputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from supervision.export import plan_table, write_plan_csv, write_plan_excel
from supervision.plan import (
    FREQUENCY_LIMIT,
    InspectionPlan,
    PlanInputError,
    create_plan,
    load_plan_inputs,
    load_task,
    publish_commitment,
    resolve_policy,
    verify_plan,
)

SEED = bytes(range(32))


def _build(task_file: Path, seed: bytes = SEED):
    task = load_task(task_file)
    inputs = load_plan_inputs(task, task_file.parent)
    policy = resolve_policy(task, task_file.parent)
    return task, inputs, policy, create_plan(task, inputs, policy, seed)


@pytest.fixture
def built(task_file: Path):
    return _build(task_file)


def test_realised_counts_match_the_ratio_table_exactly(built) -> None:
    _, _, _, plan = built
    for td in plan.tasks:
        pool = pd.DataFrame(td.pool, columns=["uscc", "grade", "lead"])
        drawn = pool[pool["uscc"].isin(td.drawn)]
        stratum = np.where((drawn["grade"] == "A") & (drawn["lead"] == 1), "A_lead", drawn["grade"])
        realised = pd.Series(stratum).value_counts().to_dict()
        for s in td.ratios.strata:
            assert realised.get(s.stratum, 0) == s.expected_inspections == td.k_per_stratum[s.stratum]
            if s.pool_size:
                assert s.expected_inspections >= 1  # floor: no stratum is exempt


def test_reproducible_and_seed_sensitive(task_file: Path, built) -> None:
    _, _, _, plan = built
    _, _, _, again = _build(task_file)
    assert again.model_dump() == plan.model_dump()
    _, _, _, other = _build(task_file, seed=bytes(32))
    assert [td.drawn for td in other.tasks] != [td.drawn for td in plan.tasks]


def test_row_order_of_inputs_does_not_change_the_draw(task_file: Path, built, city) -> None:
    _, _, _, plan = built
    city["subjects"].sample(frac=1, random_state=1).to_csv(task_file.parent / "subjects.csv", index=False)
    city["grades"].sample(frac=1, random_state=2).to_csv(task_file.parent / "grades.csv", index=False)
    _, _, _, shuffled = _build(task_file)
    assert [td.drawn for td in shuffled.tasks] == [td.drawn for td in plan.tasks]
    assert shuffled.commitment == plan.commitment


def test_joint_merge_never_loses_an_item(built) -> None:
    _, _, _, plan = built
    drawn_pairs = sorted((u, td.item) for td in plan.tasks for u in td.drawn)
    visit_pairs = sorted((v.uscc, i) for v in plan.visits for i in v.items)
    assert drawn_pairs == visit_pairs
    assert len({v.uscc for v in plan.visits}) == len(plan.visits)
    assert plan.visits_saved == plan.draws_total - len(plan.visits) > 0
    assert plan.joint_visits == sum(len(v.departments) > 1 for v in plan.visits)


def test_pools_apply_status_industry_frequency_and_leads(built, city) -> None:
    task, _, policy, plan = built
    subjects = city["subjects"].set_index("uscc")
    by_item = {td.item: td for td in plan.tasks}
    mkt01 = by_item["MKT-01"]  # industries F;H, general item
    pool_usccs = [p[0] for p in mkt01.pool]
    assert set(subjects.loc[pool_usccs, "industry"]) <= {"F", "H"}
    assert (subjects.loc[pool_usccs, "status"] == "active").all()
    # frequency limit: ≥ max_inspections_12m market inspections in the 12 months before the period
    hist = city["history"]
    recent = hist[
        pd.to_datetime(hist["inspected_on"]) >= pd.Timestamp(task.period_start - dt.timedelta(days=365))
    ]
    counts = recent["uscc"].value_counts()
    limit = policy.rules_for("market", "MKT-01").max_inspections_12m
    over = set(counts[counts >= limit].index) & set(subjects.index[subjects["status"] == "active"])
    excluded = {e.uscc for e in mkt01.excluded}
    assert excluded == over & set(subjects.index[subjects["industry"].isin(["F", "H"])])
    assert all(e.reason == FREQUENCY_LIMIT for e in mkt01.excluded)
    assert not excluded & set(pool_usccs)
    assert not by_item["FIRE-01"].excluded  # key items have no frequency limit
    # leads: A subjects with a lead form A_lead, drawn at a_with_lead_ratio (≥ the A floor)
    fire = by_item["FIRE-01"]
    leads = set(city["leads"]["uscc"])
    a_lead = [u for u, g, lead in fire.pool if g == "A" and lead]
    assert a_lead and set(a_lead) <= leads
    ratio = {s.stratum: s.ratio for s in fire.ratios.strata}
    assert ratio["A_lead"] >= ratio["A"]
    assert len(set(a_lead) & set(fire.drawn)) == fire.k_per_stratum["A_lead"] >= 1


def test_ungraded_subjects_are_reported_not_dropped(task_file: Path, city) -> None:
    grades = city["grades"].iloc[10:]
    grades.to_csv(task_file.parent / "grades.csv", index=False)
    _, _, policy, plan = _build(task_file)
    missing = set(city["grades"]["uscc"].iloc[:10])
    active = set(city["subjects"].loc[city["subjects"]["status"] == "active", "uscc"])
    fire = next(td for td in plan.tasks if td.item == "FIRE-01")  # all industries, no exclusions
    assert set(fire.ungraded) == missing & active
    for td in plan.tasks:
        pool = {u: g for u, g, _ in td.pool}
        excluded = {e.uscc for e in td.excluded}
        for u in td.ungraded:
            assert u in missing
            assert u in excluded or pool[u] == policy.defaults.ungraded_grade


def test_visit_order_groups_by_district_highest_risk_first(built) -> None:
    _, _, _, plan = built
    table = plan_table(plan)
    assert table["visit_order"].tolist() == list(range(1, len(table) + 1))
    rank = table["grade"].map({"D": 0, "C": 1, "B": 2, "A": 3})
    keys = list(zip(table["district_code"], rank, strict=True))
    assert keys == sorted(keys)
    assert (table["inspectors"] != "").all() or (table["unstaffed"] != "").any()


def test_verification_matches_and_detects_tampering(built, task_file: Path) -> None:
    task, inputs, policy, plan = built
    published = publish_commitment(task, inputs, policy, SEED)
    assert published == plan.commitment
    ok = verify_plan(InspectionPlan.model_validate_json(plan.model_dump_json()), published)
    assert ok.match and ok.verdict == "MATCH"

    def tampered(edit) -> InspectionPlan:
        copy = plan.model_copy(deep=True)
        edit(copy)
        return copy

    td0 = plan.tasks[0]
    outsider = next(u for u, *_ in td0.pool if u not in td0.drawn)

    def swap_one(p):  # one drawn subject replaced by a hand-picked one
        p.tasks[0].drawn = sorted([*p.tasks[0].drawn[1:], outsider])

    def change_pool(p):
        u, g, lead = p.tasks[0].pool[0]
        p.tasks[0].pool[0] = (u, "A" if g != "A" else "B", lead)

    def change_policy(p):
        p.policy["defaults"]["grade_ratios"]["D"] = 0.9

    def wrong_seed(p):
        p.draw_seed_hex = bytes(32).hex()

    cases = {
        "drawn": swap_one,
        "pool_hash": change_pool,
        "policy_hash": change_policy,
        "seed_commitment": wrong_seed,
    }
    for first_check, edit in cases.items():
        result = verify_plan(tampered(edit), published)
        assert not result.match, first_check
        assert result.first_difference.startswith(first_check) or first_check in result.first_difference
    swapped = verify_plan(tampered(swap_one))
    assert outsider in swapped.first_difference
    # A plan rebuilt wholesale with another seed is self-consistent, but not the published one
    _, _, _, rebuilt = _build(task_file, seed=bytes(32))
    assert verify_plan(rebuilt).match
    assert not verify_plan(rebuilt, published).match


def test_plan_outputs_csv_and_excel(built, tmp_path: Path) -> None:
    _, _, _, plan = built
    csv = pd.read_csv(write_plan_csv(plan, tmp_path / "plan.csv"), dtype=str, encoding="utf-8-sig")
    assert len(csv) == len(plan.visits)
    assert {"uscc", "name", "district_name", "grade", "items", "inspectors", "visit_order"} <= set(
        csv.columns
    )
    book = load_workbook(write_plan_excel(plan, tmp_path / "plan.xlsx"))
    assert book.sheetnames == ["检查名单", "汇总", "承诺"]
    assert book["检查名单"].max_row == len(plan.visits) + 1
    summary = {s.grade: s for s in plan.summary}
    assert sum(s.drawn for s in summary.values()) == plan.draws_total
    assert summary["D"].realised_ratio > summary["A"].realised_ratio


def test_bad_inputs_name_the_field(task_file: Path, city) -> None:
    text = task_file.read_text(encoding="utf-8")
    task_file.write_text(text.replace("as_of = 2026-09-30", "as_of = 2031-01-01"), encoding="utf-8")
    task = load_task(task_file)
    with pytest.raises(PlanInputError, match="as_of 2031-01-01"):
        create_plan(
            task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), SEED
        )
    task_file.write_text(text.replace('item = "FIRE-01"', 'item = "NOPE"'), encoding="utf-8")
    task = load_task(task_file)
    with pytest.raises(PlanInputError, match="NOPE"):
        create_plan(
            task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), SEED
        )
    task_file.write_text(text.replace('seed_hex = "', 'seed_hex = "zz'), encoding="utf-8")
    with pytest.raises(PlanInputError, match="seed_hex"):
        load_task(task_file)


def test_dirty_subject_rows_are_quarantined_with_the_rule(task_file: Path, city) -> None:
    subjects = city["subjects"].copy()
    good = subjects.iloc[0].copy()
    broken = subjects.iloc[1].copy()
    broken["uscc"] = broken["uscc"][:-1] + ("0" if broken["uscc"][-1] != "0" else "1")
    dirty = pd.concat([subjects, pd.DataFrame([good, broken])], ignore_index=True)
    dirty["status"] = "active"
    dirty.to_csv(task_file.parent / "subjects.csv", index=False)
    _, _, _, plan = _build(task_file)
    fire = next(td for td in plan.tasks if td.item == "FIRE-01")
    reasons = {e.uscc: e.reason for e in fire.excluded}
    assert reasons[broken["uscc"]] == "uscc_invalid"
    assert reasons[good["uscc"]] == "duplicate_subject_row"
    assert good["uscc"] in {u for u, *_ in fire.pool}  # the first, valid row still counts
    assert verify_plan(plan).match


def test_unstaffable_subject_stays_in_the_plan_with_its_reason(task_file: Path, city, built) -> None:
    _, _, _, plan = built
    fire = next(td for td in plan.tasks if td.item == "FIRE-01")
    victim = fire.drawn[0]
    fire_inspectors = city["inspectors"].loc[city["inspectors"]["department"] == "fire", "inspector_id"]
    conflicts = pd.concat(
        [
            city["conflicts"],
            pd.DataFrame({"inspector_id": fire_inspectors, "uscc": victim, "reason": "relative"}),
        ]
    )
    conflicts.to_csv(task_file.parent / "conflicts.csv", index=False)
    _, _, _, again = _build(task_file)
    visit = next(v for v in again.visits if v.uscc == victim)
    assert "FIRE-01" in visit.items
    assert visit.unstaffed == ["fire/FIRE-01: not_enough_eligible_inspectors_after_recusal"]
    assert not set(visit.inspectors) & set(fire_inspectors)
    assert [td.drawn for td in again.tasks] == [
        td.drawn for td in plan.tasks
    ]  # staffing never changes the draw


def test_same_department_items_share_one_team(built, city) -> None:
    _, _, _, plan = built
    market_ids = set(city["inspectors"].loc[city["inspectors"]["department"] == "market", "inspector_id"])
    both = [v for v in plan.visits if {"MKT-01", "MKT-02"} <= set(v.items) and not v.unstaffed]
    assert both, "the fixture has subjects drawn for both market items"
    for visit in both:
        # market inspectors qualify for both items: one team of two serves both (进一次门)
        market = [i for i in visit.inspectors if i in market_ids]
        assert len(market) == plan.inspectors_per_subject["market/MKT-01"]


def test_a_lead_answered_by_an_earlier_fire_inspection_leaves_the_fire_a_lead_stratum(
    task_file: Path, city
) -> None:
    """A fire inspection after the complaint answered it: the subject is plain A again for fire."""
    _, _, _, before = _build(task_file)
    fire = next(td for td in before.tasks if td.item == "FIRE-01")
    a_lead = sorted(u for u, g, lead in fire.pool if g == "A" and lead)
    answered = pd.DataFrame(
        {"uscc": a_lead[:2], "department": "fire", "inspection_item": "FIRE-01", "inspected_on": "2026-11-02"}
    )
    pd.concat([city["history"], answered]).to_csv(task_file.parent / "history.csv", index=False)
    _, _, _, after = _build(task_file)
    fire_after = next(td for td in after.tasks if td.item == "FIRE-01")
    lead_after = {u: lead for u, _, lead in fire_after.pool}
    assert len(a_lead) > 2
    assert not any(lead_after[u] for u in a_lead[:2])
    assert all(lead_after[u] for u in a_lead[2:])
