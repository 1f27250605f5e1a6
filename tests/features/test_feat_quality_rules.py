"""Each data-quality rule (features.quality) fires on its class of error and stays quiet on clean
feeds: properties over random feeds, not golden numbers."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from features.quality import GATE_COLUMNS, QualityConfig, QualityConfigError, check_feeds, load_quality_config

AS_OF = date(2026, 10, 1)
# derandomize: the same examples every run. A statistical rule misses now and then, and a fresh draw
# once found a miss (seed 396756, ×0.734, 15 a month: a stopped quiet feed not named; reported to the
# planners with issue 21's rules), so a run must not depend on the day's draw.
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def feed_rows(rng: np.random.Generator, n: int, start: date, days: int, *, dept="samr", kind="admin_penalty",
              tag="H", amount_mu=3.3, severity=("minor", "general", "serious"), districts=8) -> pd.DataFrame:
    """``n`` records of one feed dated uniformly over ``days`` from ``start``."""
    return pd.DataFrame({
        "record_id": [f"{tag}{dept}{kind}{i:07d}" for i in range(n)],
        "uscc": [f"U{x:06d}" for x in rng.integers(0, 50_000, n)],
        "kind": kind, "subkind": None,
        "severity": rng.choice(severity, n, p=[0.5, 0.35, 0.15][:len(severity)] if len(severity) == 3 else None),
        "decision_date": [start + timedelta(days=int(d)) for d in rng.integers(0, days, n)],
        "amount": np.round(10 ** rng.normal(amount_mu, 0.8, n), -1) + 10,
        "department": dept,
        "document_no": [f"宁{dept}罚〔2026〕{tag}{i}号" for i in range(n)],
        "district_code": [f"3201{d:02d}" for d in rng.integers(0, districts, n)],
    })


def history(rng, per_month: int = 60, months: int = 12, **kw) -> pd.DataFrame:
    """``months`` clean months before September 2026, about ``per_month`` records each."""
    start = date(2026, 9, 1) - timedelta(days=30 * months)
    return feed_rows(rng, per_month * months, start, 30 * months, **kw)


def this_month(rng, n: int = 60, **kw) -> pd.DataFrame:
    return feed_rows(rng, n, date(2026, 9, 1), 30, tag="B", **kw)


def _connection(batch: pd.DataFrame, hist: pd.DataFrame):
    con = duckdb.connect()
    con.register("qb_df", batch[list(GATE_COLUMNS)])
    con.register("qh_df", hist[list(GATE_COLUMNS)])
    con.execute("CREATE VIEW qb AS SELECT * REPLACE (CAST(decision_date AS DATE) AS decision_date) FROM qb_df")
    con.execute("CREATE VIEW qh AS SELECT * REPLACE (CAST(decision_date AS DATE) AS decision_date) FROM qh_df")
    return con


def run(batch: pd.DataFrame, hist: pd.DataFrame, config: QualityConfig | None = None):
    return check_feeds(_connection(batch, hist), as_of=AS_OF, config=config)


def run_all(batch: pd.DataFrame, hist: pd.DataFrame, config: QualityConfig | None = None):
    """What the gates run on a batch: ``check_feeds`` and the rules beside it (``check_all``)."""
    from features.quality_rules_extra import check_all

    return check_all(_connection(batch, hist), as_of=AS_OF, config=config)


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


seeds = st.integers(0, 2**32 - 1)


@SETTINGS
@given(seed=seeds)
def test_a_clean_month_trips_nothing(seed):
    rng = np.random.default_rng(seed)
    assert run(this_month(rng), history(rng)) == []


@SETTINGS
@given(seed=seeds, step=st.sampled_from([1, 2, 3, 4, -1, -3, -4]))
# a clean month that is itself a 1-in-200 draw from the history (KS p 0.005 against it): once scaled back
# it must still count as fitting; CI found it (the fit bar was p ≥ 0.01, stricter than the difference bar)
@example(seed=144933, step=1)
@example(seed=144933, step=-4)
@example(seed=10, step=2)
def test_a_unit_change_holds_and_names_the_power_of_ten(seed, step):
    rng = np.random.default_rng(seed)
    batch = this_month(rng)
    batch["amount"] = batch["amount"] * 10.0**step
    found = [f for f in run(batch, history(rng)) if f.rule in ("amount_unit", "amount_tail")]
    assert found and all(f.action == "hold" for f in found)
    unit = [f for f in found if f.rule == "amount_unit"]
    assert unit and unit[0].threshold == step and unit[0].feed == "samr/admin_penalty"
    assert unit[0].examples and "单位" in unit[0].message


@SETTINGS
@given(seed=seeds, factor=st.floats(2.2, 3.5))
def test_a_real_change_of_level_warns_and_never_holds(seed, factor):
    rng = np.random.default_rng(seed)
    batch = this_month(rng, n=400)
    batch["amount"] = batch["amount"] * factor
    found = run(batch, history(rng, per_month=400))
    assert "amount_shift" in rules(found)
    assert not [f for f in found if f.action == "hold"]


@SETTINGS
@given(seed=seeds, share=st.floats(0.1, 0.5))
def test_part_of_a_feed_in_wan_yuan_holds(seed, share):
    rng = np.random.default_rng(seed)
    batch = this_month(rng, n=100)
    hit = rng.random(len(batch)) < share
    batch.loc[hit, "amount"] *= 10_000
    assert {"amount_unit", "amount_tail"} & {f.rule for f in run(batch, history(rng)) if f.action == "hold"}


@SETTINGS
@given(seed=seeds, ratio=st.floats(3.5, 6.0))
def test_a_surge_holds_and_a_moderate_one_warns(seed, ratio):
    rng = np.random.default_rng(seed)
    hist = history(rng)
    big = run(this_month(rng, n=int(60 * ratio)), hist)
    assert any(f.rule == "volume_surge" and f.action == "hold" and f.observed >= 3 for f in big)
    moderate = run(this_month(rng, n=int(60 * 2.3)), hist)
    assert [f.action for f in moderate if f.rule == "volume_surge"] == ["warn"]


@SETTINGS
@given(seed=seeds)
def test_a_kind_gone_quiet_warns_silence_but_an_absent_department_is_another_file(seed):
    rng = np.random.default_rng(seed)
    hist = pd.concat([history(rng), history(rng, kind="admin_check", tag="HC")])
    quiet = this_month(rng)  # admin_check of samr absent while samr's penalties arrive
    assert [(f.rule, f.action) for f in run(quiet, hist) if f.feed == "samr/admin_check"] == \
        [("volume_silence", "warn")]
    other = this_month(rng, dept="tax")
    assert not [f for f in run(other, hist) if f.rule == "volume_silence"]


@SETTINGS
@given(seed=seeds)
def test_a_district_stopping_warns(seed):
    rng = np.random.default_rng(seed)
    hist = history(rng, per_month=200, districts=4)
    batch = this_month(rng, n=200, districts=4)
    batch = batch[batch["district_code"] != "320101"]
    found = [f for f in run(batch, hist) if f.rule == "district_silence"]
    assert found and found[0].detail["district"] == "320101" and found[0].action == "warn"


@SETTINGS
@given(seed=seeds, copies=st.floats(0.1, 1.0))
def test_records_resent_under_new_ids_hold_as_duplicates(seed, copies):
    rng = np.random.default_rng(seed)
    hist = history(rng)
    batch = this_month(rng)
    again = batch.sample(frac=copies, random_state=seed % 1000).copy()
    again["record_id"] = again["record_id"] + "-R"
    again["document_no"] = again["document_no"] + "（重发）"
    found = run(pd.concat([batch, again]), hist)
    dup = [f for f in found if f.rule == "duplicate"]
    assert dup and dup[0].action == "hold" and dup[0].detail["duplicates"] >= 2 * len(again) * 0.99


@SETTINGS
@given(seed=seeds)
# few rows swapped out of the window against many that stayed in it: check_feeds' whole-feed form
# skips it, the partial form beside it (quality_rules_extra) names it; the gates run both
@example(seed=3572596263)
def test_a_day_month_swap_holds(seed):
    rng = np.random.default_rng(seed)
    batch = this_month(rng, n=150)
    d = pd.to_datetime(batch["decision_date"])
    ok = d.dt.day <= 12
    batch = batch[ok].copy()
    batch["decision_date"] = [date(y, dd, mm) for y, mm, dd in zip(d[ok].dt.year, d[ok].dt.month, d[ok].dt.day,
                                                                    strict=True)]
    assert any(f.rule == "date_swap" and f.action == "hold" for f in run_all(batch, history(rng)))


@SETTINGS
@given(seed=seeds, years=st.integers(11, 40))
def test_dates_far_in_the_past_hold(seed, years):
    rng = np.random.default_rng(seed)
    batch = this_month(rng)
    batch["decision_date"] = [d.replace(year=d.year - years) for d in batch["decision_date"]]
    assert any(f.rule == "date_far_past" and f.action == "hold" for f in run(batch, history(rng)))


@SETTINGS
@given(seed=seeds, into=st.sampled_from(["general", "serious", "严重"]))
def test_a_recoded_category_holds(seed, into):
    rng = np.random.default_rng(seed)
    batch = this_month(rng, n=120)
    batch.loc[batch["severity"] == "minor", "severity"] = into
    found = [f for f in run(batch, history(rng)) if f.rule == "category_recoded"]
    assert found and found[0].action == "hold" and found[0].detail["column"] == "severity"


@SETTINGS
@given(seed=seeds)
def test_a_feed_with_no_history_is_never_held_by_a_history_rule(seed):
    rng = np.random.default_rng(seed)
    batch = this_month(rng, n=300)
    batch["amount"] = batch["amount"] * 10_000
    empty = batch.iloc[0:0]
    found = run(batch, empty)
    assert not {"volume_surge", "amount_unit", "amount_tail", "category_recoded", "date_late"} & rules(found)
    two_months = history(rng, months=2)  # fewer than history.min_months
    assert not {"volume_surge", "amount_unit", "amount_tail"} & rules(run(batch, two_months))


def test_the_packaged_rules_validate_and_a_bad_value_is_named(refused_toml):
    assert load_quality_config() == QualityConfig()
    refused_toml(load_quality_config, QualityConfigError, "[volume]\nhold_ratio = -1\n", r"volume\.hold_ratio")
    refused_toml(load_quality_config, QualityConfigError, "[volume]\nsurge_ratoi = 2\n", "surge_ratoi")


def _small_feeds(rng, per_month: int, feeds: int) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """A department's one large feed and ``feeds`` quiet ones (about ``per_month`` records a month)."""
    hist = [history(rng)] + [history(rng, per_month=per_month, kind=f"k{i}", tag=f"H{i}") for i in range(feeds)]
    return pd.concat(hist), [("admin_penalty", 60)] + [(f"k{i}", per_month) for i in range(feeds)]


@SETTINGS
@given(seed=seeds, factor=st.floats(0.5, 0.8), per_month=st.integers(8, 20))
# a ×0.7 month where a quiet feed (median 16) also had a low draw warned volume_silence (benchmarks/
# quality_scenarios.py seed 11); this seed gave one under the ratio to the median alone
@example(seed=5, factor=0.5, per_month=16)
@example(seed=2613, factor=0.78125, per_month=16)
@example(seed=1, factor=0.8, per_month=20)  # a month whose quiet feeds keep ≈ 16: the stop is named
def test_a_clean_seasonal_month_never_warns_silence(seed, factor, per_month):
    rng = np.random.default_rng(seed)
    hist, feeds = _small_feeds(rng, per_month, 10)
    # every feed of the month thinned alike (Spring Festival), each a Poisson draw of its own level
    batch = pd.concat([this_month(rng, n=int(rng.binomial(rng.poisson(m), factor)), kind=k)
                       for k, m in feeds])
    assert not [f for f in run(batch, hist) if f.rule == "volume_silence"]
    # the same quiet month with one quiet feed stopped still names it
    stopped = batch[batch["kind"] != "k0"]
    # when the month's quiet feeds still carry about 12 records each (the month as drawn, not the
    # nominal factor: seed 2613 at ×0.78 drew a median of 9.5, where 0 of an expected ≈ 10 from an
    # overdispersed history is not improbable enough for a Bonferroni over 11 feeds)
    typical = np.median(batch[batch["kind"] != "admin_penalty"].groupby("kind").size())
    if typical >= 12:
        assert "samr/k0" in {f.feed for f in run(stopped, hist) if f.rule == "volume_silence"}


@pytest.mark.xfail(strict=True, reason="issue 21 finding (session 12): in a month thinned ×0.734 whose quiet feeds "
                   "still carry ≥ 12 records each, the one stopped feed is not named volume_silence")
def test_a_stopped_quiet_feed_is_named_in_the_drawn_seasonal_month():
    seed, factor, per_month = 396756, 0.734375, 15
    rng = np.random.default_rng(seed)
    hist, feeds = _small_feeds(rng, per_month, 10)
    batch = pd.concat([this_month(rng, n=int(rng.binomial(rng.poisson(m), factor)), kind=k) for k, m in feeds])
    stopped = batch[batch["kind"] != "k0"]
    typical = np.median(batch[batch["kind"] != "admin_penalty"].groupby("kind").size())
    assert typical >= 12
    assert "samr/k0" in {f.feed for f in run(stopped, hist) if f.rule == "volume_silence"}
