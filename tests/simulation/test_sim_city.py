"""The city is configuration: another TOML gives another city, and a broken one is refused clearly."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from sim_helpers import read, uscc_is_valid

from simulation import CityConfig, SimulationConfig, generate


def _nanjing_raw() -> dict:
    return tomllib.loads(resources.files("simulation").joinpath("cities/nanjing.toml").read_text("utf-8"))


def test_a_two_district_city_from_config(tmp_path):
    raw = _nanjing_raw()
    raw.update(name_zh="苏州市", name_en="Suzhou", doc_prefix="苏",
               districts=[{"code": "320505", "name": "虎丘区", "weight": 1.0},
                          {"code": "320506", "name": "吴中区", "weight": 2.0}])
    city = CityConfig.from_dict(raw)
    generate(SimulationConfig(n_subjects=300, seed=2, city=city, dirt=False), tmp_path)
    subjects = read(tmp_path, "subjects")
    assert set(subjects.district_code) == {"320505", "320506"}
    assert (subjects.uscc.str[2:8] == subjects.district_code).all()
    assert subjects.uscc.map(uscc_is_valid).all()
    assert subjects.name.str.startswith(("苏州市", "虎丘区", "吴中区")).all()
    records = read(tmp_path, "records")
    penalties = records[records.kind == "admin_penalty"]
    assert penalties.document_no.str.startswith("苏").all()
    inspectors = read(tmp_path, "inspectors")
    assert set(inspectors.district_code) == {"320505", "320506"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"districts": [{"code": "3205", "name": "x", "weight": 1.0}]}, "district code '3205'"),
        ({"arrears_departments": {"tax": "treasury"}}, "'treasury' is not a department"),
    ],
)
def test_a_broken_city_is_refused_with_the_field(change, message):
    raw = {**_nanjing_raw(), **change}
    with pytest.raises(ValueError, match=message):
        CityConfig.from_dict(raw)


def test_config_validation_names_field_value_and_rule():
    with pytest.raises(ValueError, match=r"silent_department 'police' is not a department of Nanjing"):
        SimulationConfig(n_subjects=10, seed=1, scenario="silent_feed", silent_department="police")
    with pytest.raises(ValueError, match=r"n_subjects 0 must be between 1 and 50,000,000"):
        SimulationConfig(n_subjects=0, seed=1)
