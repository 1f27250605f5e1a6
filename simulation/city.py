"""The city a simulation runs in: districts, departments, inspection items (configuration, not logic).

The default is Nanjing (``cities/nanjing.toml``); any other city is a TOML file of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from configfile import parse_toml

#: GB/T 4754-2017 section codes (their names: ``features.schema.INDUSTRY_SECTION_NAMES``; the simulator
#: and ingestion never import each other, and a test holds the two lists equal).
INDUSTRY_SECTIONS: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQRST")


@dataclass(frozen=True)
class District:
    """An administrative division of the city (GB/T 2260 code, USCC positions 3–8)."""

    code: str
    name: str
    weight: float


@dataclass(frozen=True)
class Birthplace:
    """A birth-place code for resident IDs and the birth years in which the code existed."""

    code: str
    first_year: int
    last_year: int


@dataclass(frozen=True)
class Department:
    """An issuing department: the record kinds it issues (relative weights) and the sections it covers."""

    code: str
    name_zh: str
    name_en: str
    doc_abbr: str
    industries: tuple[str, ...] = ()
    kinds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InspectionItem:
    """An inspection item (抽查事项) of the double-random scheme."""

    item_code: str
    department: str
    name_zh: str
    name_en: str
    key_item: bool
    industries: tuple[str, ...] = ()


@dataclass(frozen=True)
class CityConfig:
    """Everything city-specific the generator needs; validated on construction."""

    name_zh: str
    name_en: str
    doc_prefix: str
    court_doc_prefix: str
    districts: tuple[District, ...]
    birthplaces: tuple[Birthplace, ...]
    departments: tuple[Department, ...]
    items: tuple[InspectionItem, ...]
    arrears_departments: dict[str, str]

    def __post_init__(self) -> None:
        codes = {d.code for d in self.departments}
        for district in self.districts:
            if len(district.code) != 6 or not district.code.isdigit():
                raise ValueError(f"district code {district.code!r} must be 6 digits (GB/T 2260)")
        for item in self.items:
            if item.department not in codes:
                raise ValueError(f"item {item.item_code}: department {item.department!r} is not a department")
        for subkind, dept in self.arrears_departments.items():
            if dept not in codes:
                raise ValueError(f"arrears_departments.{subkind}: {dept!r} is not a department")
        for required in ("court",):
            if required not in codes:
                raise ValueError(f"the city needs a {required!r} department (dishonest-debtor list)")
        bad = [s for d in self.departments for s in d.industries if s not in INDUSTRY_SECTIONS]
        bad += [s for i in self.items for s in i.industries if s not in INDUSTRY_SECTIONS]
        if bad:
            raise ValueError(f"unknown GB/T 4754 sections {sorted(set(bad))}")

    def department(self, code: str) -> Department:
        """The department with this code (KeyError naming the code otherwise)."""
        for dept in self.departments:
            if dept.code == code:
                return dept
        raise KeyError(f"no department {code!r} in city {self.name_en}")

    @classmethod
    def from_dict(cls, raw: dict) -> CityConfig:
        """Build a city from the parsed TOML structure."""
        return cls(
            name_zh=raw["name_zh"],
            name_en=raw["name_en"],
            doc_prefix=raw["doc_prefix"],
            court_doc_prefix=raw["court_doc_prefix"],
            districts=tuple(District(**d) for d in raw["districts"]),
            birthplaces=tuple(Birthplace(**b) for b in raw["birthplaces"]),
            departments=tuple(
                Department(**{**d, "industries": tuple(d.get("industries", ())), "kinds": dict(d.get("kinds", {}))})
                for d in raw["departments"]
            ),
            items=tuple(InspectionItem(**{**i, "industries": tuple(i.get("industries", ()))}) for i in raw["items"]),
            arrears_departments=dict(raw["arrears_departments"]),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> CityConfig:
        """Load a city from a TOML file shaped like ``simulation/cities/nanjing.toml``."""
        return cls.from_dict(parse_toml(Path(path).read_text(encoding="utf-8"), f"city {path}", ValueError))

    @classmethod
    def nanjing(cls) -> CityConfig:
        """The default city: Nanjing's 11 districts."""
        text = resources.files("simulation").joinpath("cities/nanjing.toml").read_text(encoding="utf-8")
        return cls.from_dict(parse_toml(text, "city simulation/cities/nanjing.toml", ValueError))
