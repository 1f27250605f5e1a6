"""Names, not codes: what a person reads for a department, an industry section, a status, a record
kind, an inspector or a time (Beijing time, to the minute). One place; the pages use these as Jinja
filters (``serving.pages``) and the downloads call them directly.

Department names come from the data directory's ``departments.csv`` (what the simulator and a
city's data office write, docs/data-contract.md); without one, from the bundled city configuration
(``simulation/cities/nanjing.toml``). Industry sections are GB/T 4754-2017's (``features.schema.INDUSTRY_SECTION_NAMES``).
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from features.schema import INDUSTRY_SECTION_NAMES
from serving.i18n import STATUS_NAMES, kind_name

BEIJING = ZoneInfo("Asia/Shanghai")



def _pick(names: tuple[str, str] | None, code: str, lang: str) -> str:
    if not names:
        return code
    return names[1] if lang == "en" and names[1] else names[0]


@lru_cache(maxsize=1)
def _city_departments() -> dict[str, tuple[str, str]]:
    from simulation.city import CityConfig

    return {d.code: (d.name_zh, d.name_en) for d in CityConfig.nanjing().departments}


@lru_cache(maxsize=16)
def _departments_file(path: str, mtime: float) -> dict[str, tuple[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row["code"]: (row.get("name_zh") or row["code"], row.get("name_en") or "")
                for row in csv.DictReader(fh) if row.get("code")}


def department_names(data_dir: str | Path | None = None) -> dict[str, tuple[str, str]]:
    """Department code → (Chinese name, English name): the data directory's ``departments.csv``
    over the bundled city's."""
    names = dict(_city_departments())
    path = Path(data_dir) / "departments.csv" if data_dir else None
    if path is not None and path.is_file():
        names.update(_departments_file(str(path), path.stat().st_mtime))
    return names


def department_name(code: str | None, lang: str = "zh", data_dir: str | Path | None = None) -> str:
    if not code:
        return ""
    return _pick(department_names(data_dir).get(code), code, lang)


def industry_name(section: str | None, lang: str = "zh") -> str:
    """``C`` → 制造业 (Manufacturing); an unknown value as it is."""
    if not section:
        return ""
    return _pick(INDUSTRY_SECTION_NAMES.get(section), section, lang)


def status_name(status: str | None, lang: str = "zh") -> str:
    """A plan, result, objection or repair status (``drawn``, ``published``, ``pending`` …) by name."""
    if not status:
        return ""
    return _pick(STATUS_NAMES.get(status), status, lang)


def record_kind_name(kind: str | None, lang: str = "zh") -> str:
    return kind_name(kind, lang) if kind else ""


@lru_cache(maxsize=16)
def _inspectors_file(path: str, mtime: float) -> dict[str, str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return {row["inspector_id"]: row.get("name") or "" for row in csv.DictReader(fh) if row.get("inspector_id")}


def inspector_names(data_dir: str | Path | None) -> dict[str, str]:
    """Inspector id → name from the data directory's ``inspectors.csv`` (empty when there is none)."""
    path = Path(data_dir) / "inspectors.csv" if data_dir else None
    if path is None or not path.is_file():
        return {}
    return _inspectors_file(str(path), path.stat().st_mtime)


def inspector_label(inspector_id: str, names: dict[str, str]) -> str:
    """``吴辉（INS000002）``: the name a person knows, the id an auditor matches."""
    name = names.get(inspector_id)
    return f"{name}（{inspector_id}）" if name else inspector_id


def one_language(value: str | None, lang: str = "zh") -> str:
    """The half of a stored bilingual text (``中文 / English``, ``中文；English``) in ``lang``; any
    other text as it is (a committed value is shown, never changed)."""
    import re

    if not value:
        return value or ""
    for sep in (" / ", "；"):
        head, found, tail = value.partition(sep)
        if found and re.search("[\u3400-\u9fff]", head) and not re.search("[\u3400-\u9fff]", tail):
            return tail.strip() if lang == "en" else head.strip()
    return value


def beijing_minute(value: dt.datetime | dt.date | str | None) -> str:
    """A time as a person reads it: Beijing time to the minute (``2026-11-23 09:05``). A time without
    zone is UTC (how the database stores it); a date stays a date; empty stays empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
