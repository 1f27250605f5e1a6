"""Run parameters of a simulation: size, seed, dates, scenario, dirt (plain data, validated here)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date

from simulation.city import INDUSTRY_SECTIONS, CityConfig

SCENARIOS = ("baseline", "sector_shock", "silent_feed", "severity_recoding")
FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class PublicityRules:
    """Dated publicity rules (NDRC 信用修复管理办法; docs/domain.md §4): minimum months before repair, maximum publicity.

    ``serious_min_months_before`` applies to serious penalties decided before ``rules_change_on``
    (2019 rules: 6 months), ``serious_min_months`` from that date on (2026 rules: 1 year).
    """

    general_min_months: int = 3
    general_max_months: int = 12
    serious_min_months: int = 12
    serious_min_months_before: int = 6
    serious_max_months: int = 36
    rules_change_on: date = date(2026, 4, 1)
    #: list kind → (minimum months before exit or repair, maximum publicity months)
    lists: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "list_serious_dishonesty": (12, 36),
            "list_key_attention": (3, 12),
            "list_abnormal_operation": (0, 36),
            "list_dishonest_debtor": (0, 24),
        }
    )


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Validation happens on construction; errors name the field, value and rule."""

    n_subjects: int
    seed: int
    end: date = date(2026, 10, 31)
    years: int = 5
    scenario: str = "baseline"
    scenario_date: date = date(2026, 1, 1)
    shock_sector: str = "C"
    silent_department: str = "ecology"
    recoded_department: str = "samr"
    dirt: bool = True
    dirt_rate: float = 0.01
    file_format: str = "csv"
    chunk_size: int = 50_000
    city: CityConfig = field(default_factory=CityConfig.nanjing)
    publicity: PublicityRules = field(default_factory=PublicityRules)

    def __post_init__(self) -> None:
        if not 1 <= self.n_subjects <= 50_000_000:
            # organisation-code serials above 5·10^7 are reserved for dirty and unknown subjects
            raise ValueError(f"n_subjects {self.n_subjects} must be between 1 and 50,000,000")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed {self.seed} must be in [0, 2^63)")
        if not 1 <= self.years <= 20:
            raise ValueError(f"years {self.years} must be between 1 and 20")
        if self.end.day != calendar.monthrange(self.end.year, self.end.month)[1]:
            raise ValueError(f"end {self.end} must be the last day of a month (the simulation runs in months)")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario {self.scenario!r} must be one of {', '.join(SCENARIOS)}")
        if not self.start < self.scenario_date <= self.end:
            raise ValueError(f"scenario_date {self.scenario_date} must be after {self.start} and on or before {self.end}")
        if self.shock_sector not in INDUSTRY_SECTIONS:
            raise ValueError(f"shock_sector {self.shock_sector!r} must be a GB/T 4754 section A–T")
        codes = {d.code for d in self.city.departments}
        for name in ("silent_department", "recoded_department"):
            if getattr(self, name) not in codes:
                raise ValueError(f"{name} {getattr(self, name)!r} is not a department of {self.city.name_en}")
        if not 0 <= self.dirt_rate <= 0.2:
            raise ValueError(f"dirt_rate {self.dirt_rate} must be between 0 and 0.2")
        if self.file_format not in FORMATS:
            raise ValueError(f"file_format {self.file_format!r} must be csv or parquet")
        if self.chunk_size < 100:
            raise ValueError(f"chunk_size {self.chunk_size} must be at least 100")

    @property
    def start(self) -> date:
        """First day of the simulated span (``years`` whole years of months ending at ``end``)."""
        month_index = self.end.year * 12 + self.end.month - 1 - 12 * self.years + 1
        return date(month_index // 12, month_index % 12 + 1, 1)

    @property
    def n_months(self) -> int:
        """Number of simulated months with records."""
        return 12 * self.years
