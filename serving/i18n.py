"""Page texts in Chinese (default) and English: the catalogue ``serving/texts.toml``, read once at
import through the project's one TOML loader and checked (every entry has both languages, none
empty; an endpoint's pattern compiles)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from configfile import load_toml_file


class TextCatalogueError(ValueError):
    """The packaged text catalogue is not TOML or breaks the shape below."""


def _both_languages(entry: dict[str, str]) -> dict[str, str]:
    if len(entry) != 2:
        raise ValueError("a text needs zh and en")
    return entry


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:  # not a ValueError: pydantic would let it through unnamed
        raise ValueError(f"not a regular expression ({exc})") from exc
    return pattern


_Text = Annotated[str, Field(min_length=1)]
#: one text, ``{"zh": …, "en": …}``, both given, neither empty
_Bilingual = Annotated[dict[Literal["zh", "en"], _Text], AfterValidator(_both_languages)]


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: Annotated[str, AfterValidator(_compiles)]
    zh: _Text
    en: _Text


class TextCatalogue(BaseModel):
    """The sections of ``texts.toml``: texts by key, and the endpoints' names in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: dict[str, _Bilingual]
    pages: dict[str, dict[str, _Bilingual]]
    alerts: dict[str, _Bilingual]
    alert_rules: dict[str, _Bilingual]
    kinds: dict[str, _Bilingual]
    statuses: dict[str, _Bilingual]
    errors: dict[str, _Bilingual]
    validation_rules: dict[str, _Bilingual]
    pattern_rules: dict[str, _Bilingual]
    endpoints: list[_Endpoint]


def _pairs(section: dict[str, _Bilingual]) -> dict[str, tuple[str, str]]:
    return {key: (entry["zh"], entry["en"]) for key, entry in section.items()}


_CATALOGUE = load_toml_file(TextCatalogue, None, package="serving", name="texts.toml", label="text catalogue",
                            error=TextCatalogueError)

#: texts every page may use (``text``)
TEXTS: dict[str, dict[str, str]] = _CATALOGUE.texts
#: texts of one page or family of pages; a key not found there falls back to ``TEXTS`` (``page_text``)
PAGE_TEXTS: dict[str, dict[str, dict[str, str]]] = _CATALOGUE.pages
#: alert sentences on the analyst page; ``{s}`` names what alerted, ``{o}`` the observed value, ``{t}`` the threshold
ALERT_TEXTS: dict[str, dict[str, str]] = _CATALOGUE.alerts
#: monitoring alert rules by name (``serving.labels.alert_rule_name``)
ALERT_RULE_NAMES: dict[str, tuple[str, str]] = _pairs(_CATALOGUE.alert_rules)
KIND_NAMES: dict[str, tuple[str, str]] = _pairs(_CATALOGUE.kinds)
#: statuses of plans, results, objections and repairs (``serving.labels.status_name``)
STATUS_NAMES: dict[str, tuple[str, str]] = _pairs(_CATALOGUE.statuses)
#: what a person reads when something goes wrong, by error code (``serving.errors.human_message``)
ERROR_TEXTS: dict[str, dict[str, str]] = _CATALOGUE.errors
#: pydantic's error types → the rule in plain words, ``{n}`` its limit (``serving.errors.validation_error``)
VALIDATION_RULES: dict[str, tuple[str, str]] = _pairs(_CATALOGUE.validation_rules)
#: fields whose format rule a person knows by name (never the regular expression)
PATTERN_RULES: dict[str, tuple[str, str]] = _pairs(_CATALOGUE.pattern_rules)
#: the query log's endpoints by what they are for, first match: (pattern, Chinese, English)
ENDPOINT_NAMES: tuple[tuple[str, str, str], ...] = tuple((e.pattern, e.zh, e.en) for e in _CATALOGUE.endpoints)


def text(key: str, lang: str) -> str:
    entry = TEXTS.get(key)
    return entry.get(lang, entry["zh"]) if entry else key


def page_text(page: str, key: str, lang: str) -> str:
    """The text ``key`` of ``page`` (``PAGE_TEXTS``), else the common one, else the key itself."""
    entry = PAGE_TEXTS[page].get(key) or TEXTS.get(key)
    return entry.get(lang, entry["zh"]) if entry else key


def kind_name(kind: str, lang: str) -> str:
    names = KIND_NAMES.get(kind)
    return (names[0] if lang == "zh" else names[1]) if names else kind
