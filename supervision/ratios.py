"""The ratio feed: per grade stratum, the inspection ratio, pool size and expected inspections.

``inspection_ratios`` is the one computation; ``RatioFeed`` is how the scheduler consumes it,
either in-process or over HTTP (``GET /api/v1/inspection-ratios``), so an external 双随机
platform can read the same numbers the scheduler uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from supervision.draw import GRADE_OF_STRATUM, PPM, STRATA, k_for_stratum, ratio_to_ppm
from supervision.inspection_policy import InspectionPolicy, ItemRules


class StratumRatioOut(BaseModel):
    """One stratum of the ratio table."""

    model_config = ConfigDict(frozen=True)

    stratum: str = Field(description="A, A_lead (A with a lead), B, C or D")
    grade: str = Field(pattern="^[ABCD]$")
    pool_size: int = Field(ge=0)
    configured_ratio: float = Field(ge=0, le=1, description="ratio from the policy, before any cap")
    ratio: float = Field(ge=0, le=1, description="effective ratio after the general-item cap")
    ratio_ppm: int = Field(
        ge=0, le=PPM, description="effective ratio in parts per million; the draw uses this"
    )
    expected_inspections: int = Field(ge=0, description="ceil(pool_size × ratio_ppm / 10⁶)")


class InspectionRatiosOut(BaseModel):
    """The ratio feed for one department, inspection item and grade date."""

    model_config = ConfigDict(frozen=True)

    department: str
    item: str
    as_of: dt.date = Field(description="as-of date of the grades used")
    model_version: str = Field(description="model version of the grades used")
    policy_name: str
    policy_version: str
    policy_hash: str
    key_item: bool
    floor_ratio: float
    general_cap: float | None = Field(description="share of the pool; None for key items (no cap)")
    cap_applied: bool
    pool_size: int = Field(ge=0)
    expected_inspections: int = Field(ge=0)
    strata: list[StratumRatioOut]

    def ppm_by_stratum(self) -> dict[str, int]:
        """Effective ratio (ppm) per stratum name."""
        return {s.stratum: s.ratio_ppm for s in self.strata}


def _configured_ratios(rules: ItemRules) -> dict[str, float]:
    ratios = {s: rules.grade_ratios[GRADE_OF_STRATUM[s]] for s in STRATA}
    # A subjects with a lead may get a proactive visit (无事不扰 allows it); the policy validator
    # already pins A without a lead to the floor when a_no_visit_without_lead is on.
    ratios["A_lead"] = rules.a_with_lead_ratio
    return ratios


def _apply_cap(
    counts: Mapping[str, int], ppm: dict[str, int], floor_ppm: int, cap_ppm: int
) -> dict[str, int]:
    """Scale ratios by the largest λ (in ppm, found by bisection) that keeps the total under the cap.

    Each stratum gets max(floor, ⌊ppm × λ⌋); the floor wins over the cap (不免抽).
    """
    total_pool = sum(counts.values())
    cap_k = total_pool * cap_ppm // PPM

    def scaled(lam: int) -> dict[str, int]:
        return {s: max(floor_ppm, ppm[s] * lam // PPM) for s in ppm}

    def total(p: dict[str, int]) -> int:
        return sum(k_for_stratum(counts.get(s, 0), p[s]) for s in p)

    if total(ppm) <= cap_k:
        return ppm
    lo, hi = 0, PPM  # invariant: total(scaled(lo)) ≤ cap_k or lo == 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(scaled(mid)) <= cap_k:
            lo = mid
        else:
            hi = mid - 1
    return scaled(lo)


def inspection_ratios(
    stratum_counts: Mapping[str, int],
    *,
    rules: ItemRules,
    policy: InspectionPolicy,
    department: str,
    item: str,
    as_of: dt.date,
    model_version: str,
) -> InspectionRatiosOut:
    """Ratios and expected inspections per stratum from stratum pool sizes and the item's rules.

    Key items are never capped; general items are scaled down to ``general_cap`` of the pool
    but never below ``floor_ratio``.
    """
    unknown = set(stratum_counts) - set(STRATA)
    if unknown:
        raise ValueError(f"stratum_counts has unknown strata {sorted(unknown)}; allowed {list(STRATA)}")
    counts = {s: int(stratum_counts.get(s, 0)) for s in STRATA}
    configured = _configured_ratios(rules)
    ppm = {s: ratio_to_ppm(r) for s, r in configured.items()}
    floor_ppm = ratio_to_ppm(rules.floor_ratio)
    effective = ppm if rules.key_item else _apply_cap(counts, ppm, floor_ppm, ratio_to_ppm(rules.general_cap))
    strata = [
        StratumRatioOut(
            stratum=s,
            grade=GRADE_OF_STRATUM[s],
            pool_size=counts[s],
            configured_ratio=configured[s],
            ratio=effective[s] / PPM,
            ratio_ppm=effective[s],
            expected_inspections=k_for_stratum(counts[s], effective[s]),
        )
        for s in STRATA
    ]
    return InspectionRatiosOut(
        department=department,
        item=item,
        as_of=as_of,
        model_version=model_version,
        policy_name=policy.name,
        policy_version=policy.version,
        policy_hash=policy.policy_hash(),
        key_item=rules.key_item,
        floor_ratio=rules.floor_ratio,
        general_cap=None if rules.key_item else rules.general_cap,
        cap_applied=effective != ppm,
        pool_size=sum(counts.values()),
        expected_inspections=sum(s.expected_inspections for s in strata),
        strata=strata,
    )


def stratum_of(grades: pd.Series, leads: pd.Series) -> pd.Series:
    """Stratum name per subject: the grade, except A with a lead → ``A_lead``."""
    strata = grades.astype(str).copy()
    strata[(grades == "A") & leads.astype(bool)] = "A_lead"
    return strata


@runtime_checkable
class RatioFeed(Protocol):
    """Where the scheduler gets its ratios from."""

    def inspection_ratios(self, *, department: str, item: str, as_of: dt.date) -> InspectionRatiosOut:
        """The ratio table for one department, item and grade date."""
        ...


@dataclass(kw_only=True, eq=False)  # eq=False: a feed is compared by identity (it holds frames)
class InProcessRatioFeed:
    """Ratio feed computed from a pool table held in memory.

    ``pools`` maps (department, item) to a frame with columns ``grade`` and ``lead``;
    ``key_items`` maps item codes to the items file's ``key_item`` flag.
    """

    pools: Mapping[tuple[str, str], pd.DataFrame]
    policy: InspectionPolicy
    key_items: Mapping[str, bool]
    as_of: dt.date
    model_version: str

    def inspection_ratios(self, *, department: str, item: str, as_of: dt.date) -> InspectionRatiosOut:
        if as_of != self.as_of:
            raise ValueError(f"as_of {as_of} requested, but this feed holds grades as of {self.as_of}")
        if (department, item) not in self.pools:
            raise KeyError(f"no subject pool for department={department!r}, item={item!r}")
        pool = self.pools[(department, item)]
        counts = stratum_of(pool["grade"], pool["lead"]).value_counts().to_dict()
        rules = self.policy.rules_for(department, item, key_item=bool(self.key_items.get(item, False)))
        return inspection_ratios(
            counts,
            rules=rules,
            policy=self.policy,
            department=department,
            item=item,
            as_of=as_of,
            model_version=self.model_version,
        )


class HttpRatioFeed:
    """Ratio feed read from ``GET {base_url}/api/v1/inspection-ratios`` (the serving API).

    Authenticates as a person (``token``: a bearer JWT) or as a machine (``api_key``: sent as
    ``X-API-Key``, how an external 双随机 platform calls the API); at most one of the two.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        client=None,
    ) -> None:
        if token and api_key:
            raise ValueError("HttpRatioFeed: give a bearer token or an API key, not both")
        self.base_url = base_url
        self.token = token
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.client = client  # an httpx.Client (tests pass one with a MockTransport)

    def _auth_headers(self) -> dict[str, str]:
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def inspection_ratios(self, *, department: str, item: str, as_of: dt.date) -> InspectionRatiosOut:
        import httpx

        headers = self._auth_headers()
        params = {"department": department, "item": item, "as_of": as_of.isoformat()}
        url = self.base_url.rstrip("/") + "/api/v1/inspection-ratios"
        client = self.client or httpx.Client(timeout=self.timeout_s)
        try:
            response = client.get(url, params=params, headers=headers)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ConnectionError(f"ratio feed {url} with {params}: {exc}") from exc
        finally:
            if self.client is None:
                client.close()
        return InspectionRatiosOut.model_validate_json(response.content)
