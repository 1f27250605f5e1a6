"""Boundary validation helpers shared by schemas and routes."""

from __future__ import annotations

import codecs
import re
import unicodedata
from types import MappingProxyType
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from features.schema import control_pattern

# the one USCC rule (and its format, re-exported for schemas and routes) is the uscc package's
from uscc import USCC_PATTERN as USCC_PATTERN
from uscc import why_invalid

# the largest id a 32-bit INTEGER key holds: a larger id in a URL is refused as invalid input
# (422) before any query
MAX_ROW_ID = 2**31 - 1
# a read's purpose (查询用途): two characters at least, to say something; 200 at most, what the query
# log's purpose column holds (serving.db.tables.QueryLogEntry). Spread into Query/Header/Form/Field.
PURPOSE_LENGTH = MappingProxyType({"min_length": 2, "max_length": 200})


def uscc_problem(code: str) -> str | None:
    """Why ``code`` is not a valid unified social credit code (GB 32100-2015), in English, or None:
    the one rule of the ``uscc`` package (``uscc.why_invalid``), which ingestion applies too."""
    problem = why_invalid(code)
    return None if problem is None else problem[1]


def binary_target(value: object) -> int | None:
    """A 0/1 target (1 = an adverse outcome) as a file writes it, or None: a number equal to 0 or 1
    ("1", "1.0", " 0", 1.0), the rule the models apply (``models.base.check_binary_target``). The one
    rule of `tiers fit` and the sector page's upload."""
    try:
        number = float(value)  # ignores outer spaces; refuses "", "yes", None
    except (TypeError, ValueError):
        return None
    return int(number) if number in (0.0, 1.0) else None


def decode_table_text(content: bytes) -> tuple[str, str] | None:
    """A table file's bytes as text and the codec that read them, or None: UTF-8 first (a BOM dropped,
    reported as ``utf-8-sig``), else GB18030 (a superset of GBK, as a Chinese Excel saves CSV). The one
    rule of `tiers fit` and the sector page's upload."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "utf-8-sig" and not content.startswith(codecs.BOM_UTF8):
            encoding = "utf-8"
        return text, encoding
    return None


def _check_uscc(code: str) -> str:
    problem = uscc_problem(code)
    if problem:
        raise ValueError(f"not a valid unified social credit code: {problem}")
    return code


Uscc = Annotated[str, AfterValidator(_check_uscc)]


_CONTROL = re.compile(control_pattern(multiline=True))


def reject_control_characters(value: str | None) -> str | None:
    """Refuse control characters other than tab and newlines: the record schema's rule (features.schema;
    NUL cannot be stored by PostgreSQL)."""
    if value is not None and _CONTROL.search(value):
        raise ValueError("must not contain control characters (e.g. NUL)")
    return value


NoControlChars = AfterValidator(reject_control_characters)
CleanText = Annotated[str, NoControlChars]


def visible_text(value: object) -> object:
    """Free text as a person reads it: format characters (Unicode category Cf: zero-width spaces
    and joiners, BOM, direction marks) removed and surrounding whitespace (full-width and
    no-break spaces too) stripped, so that a minimum length counts what can be seen: four
    zero-width spaces are no 依据. Runs before the length check; the text is stored so.

    Not NFKC: it would rewrite the full-width punctuation of Chinese prose (，→ ,), and the
    invisible characters it could reveal (U+3000, U+00A0) are whitespace, stripped anyway."""
    if not isinstance(value, str):
        return value
    return "".join(c for c in value if unicodedata.category(c) != "Cf").strip()


_FULL_WIDTH_ALNUM = {c: unicodedata.normalize("NFKC", chr(c)) for r in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B), (0xFF41, 0xFF5B))
                     for c in range(*r)}
_USCC_TYPED = re.compile(r"[0-9A-Za-z]{1,18}")


def list_search(value: str | None) -> str | None:
    """A list's search as typed → as the list looks it up (None: no search): invisible characters
    and surrounding blanks removed (``visible_text``), full-width letters and digits (an IME's
    default) made ASCII, and a USCC prefix (letters and digits only) upper-cased, as USCCs are
    stored. The NFKC of letters and digits only: NFKC of the whole text would turn a name's
    full-width brackets (（集团）, as names are registered) into ASCII ones that match nothing."""
    if value is None:
        return None
    text = str(visible_text(value)).translate(_FULL_WIDTH_ALNUM)
    if _USCC_TYPED.fullmatch(text):
        text = text.upper()
    return text or None


# Prose a person writes (a basis, a note, a reason): visible text without control characters.
# Not for secrets or identifiers (a password keeps its spaces).
VisibleText = Annotated[str, BeforeValidator(visible_text), NoControlChars]


def some_visible_text(value: object) -> object:
    """`visible_text` for a field that may be left empty: empty stays empty, but text made only of
    invisible characters is refused rather than read as "nothing written"."""
    shown = visible_text(value)
    if shown == "" and isinstance(value, str) and value.strip():
        raise ValueError("must contain visible characters (only invisible ones were given)")
    return shown


# Optional prose ("" when not given), e.g. a correction reason needed only for a correction.
OptionalVisibleText = Annotated[str, BeforeValidator(some_visible_text), NoControlChars]
