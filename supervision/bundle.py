"""The documents of a ``tiers-draw-v2`` draw (docs/draw-algorithm.md §14–§17), as pydantic models.

- :class:`DrawCommitmentV2` — published before the draw (public);
- :class:`PublicSalt`       — the public randomness, entered after the commitment (public);
- :class:`PublicBundle`     — what anyone can check without seeing a grade (public);
- :class:`SubjectOpening`   — one subject's private proof of its own treatment;
- :class:`SealedDraw`       — what a full plan adds for auditors (holds the secret nonce key).

Every document is exchanged as JSON; digests are SHA-256 of its canonical JSON
(:func:`supervision.inspection_policy.canonical_json`). Times are UTC text ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.
Models only: building them is ``plan_v2``'s job, checking them ``verify_v2``'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from supervision.draw import PPM, STRATA
from supervision.inspection_policy import TEXT_MAX, TEXT_PATTERN, canonical_json

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Names and free text: 1–500 characters (TEXT_MAX, the one limit of the free texts of a plan: its
# request, commitment and bundle), one line, no control characters — C0, DEL and C1 (so canonical
# JSON only escapes quotes, backslashes and non-ASCII, and no text hides an invisible control).
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX, pattern=TEXT_PATTERN)]
OptionalText = Annotated[str, StringConstraints(max_length=TEXT_MAX, pattern=TEXT_PATTERN.replace("]+$", "]*$"))]
MAX_TASKS = 500  # department/item pairs in one plan (a city's whole catalogue is far fewer)
# The embedded policy text: at most this many characters (a real policy is a few kB).
POLICY_JSON_MAX = 100_000
StratumName = Literal["A", "A_lead", "B", "C", "D"]

COMMITMENT_FORMAT = "tiers-draw-v2/commitment"
BUNDLE_FORMAT = "tiers-draw-v2/bundle"
OPENING_FORMAT = "tiers-draw-v2/opening"


def utc_text(moment: dt.datetime) -> str:
    """A timezone-aware time as UTC text with microseconds (the form every v2 document uses)."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment} has no time zone; rule: times are recorded in UTC")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> dt.datetime:
    """The instant of a UTC text time."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _real_time(value: str) -> str:
    parse_utc(value)
    return value


def _real_date(value: str) -> str:
    dt.date.fromisoformat(value)
    return value


# ASCII digits only (a regex \d would also take full-width and other Unicode digits).
UtcTime = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"),
    AfterValidator(_real_time),
]
IsoDate = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_real_date)
]

# The salt's format (docs/draw-algorithm.md §16.1): a regular expression in a small grammar whose
# meaning is the same in every regex engine (literals, \d, escaped metacharacters, [..] classes of
# ASCII characters and ranges, {m} / {m,n} counts) — no alternation, no optional or unbounded
# repetition, so a result has one spelling when the pattern is written for it.
_LITERAL = r"[ !\"#%&',\-/0-9:;<=>@A-Z_`a-z~]"
_CLASS_CHAR = r"[ !\"#%&',/0-9:;<=>@A-Z_`a-z~]"
_UNIT = rf"(?:{_LITERAL}|\\d|\\[\\.^$|?*+()\[\]{{}}]|\[(?:{_CLASS_CHAR}-{_CLASS_CHAR}|{_CLASS_CHAR})+\])"
SALT_PATTERN_GRAMMAR = re.compile(rf"(?:{_UNIT}(?:\{{[0-9]{{1,3}}(?:,[0-9]{{1,3}})?\}})?)+")
SALT_PATTERN_MAX = 200


def salt_pattern_problem(pattern: str) -> str | None:
    """What makes ``pattern`` no salt pattern (§16.1), or None."""
    if not 1 <= len(pattern) <= SALT_PATTERN_MAX or SALT_PATTERN_GRAMMAR.fullmatch(pattern) is None:
        return (
            f"salt_pattern {pattern!r} is outside the grammar of §16.1 (1–{SALT_PATTERN_MAX} characters: "
            "literals, \\d, escaped metacharacters, [..] classes, {m} or {m,n})"
        )
    for low, high in re.findall(r"\{([0-9]+)(?:,([0-9]+))?\}", pattern):
        if int(high or low) == 0 or int(low) > int(high or low):
            return f"salt_pattern {pattern!r}: a count {{m}} or {{m,n}} needs m ≤ n and n ≥ 1"
    for cls in re.findall(r"(?<!\\)\[([^\]]*)\]", pattern):
        for low, high in re.findall(r"(.)-(.)", cls):
            if low > high:
                return f"salt_pattern {pattern!r}: the range {low}-{high} is empty"
    return None


def salt_matches(pattern: str, value: str) -> bool:
    """The salt value is in canonical form: it matches the committed pattern in full (ASCII
    semantics), so it is also NFKC-normal."""
    return re.fullmatch(pattern, value, flags=re.ASCII) is not None


def canonical_salt(value: str) -> str:
    """How a typed-in salt is normalised before it is checked: NFKC (full-width digits and spaces
    become ASCII) and surrounding white space removed. Verifiers never normalise."""
    return unicodedata.normalize("NFKC", value).strip()


def _salt_pattern(value: str) -> str:
    problem = salt_pattern_problem(value)
    if problem:
        raise ValueError(problem)
    return value


SaltPattern = Annotated[str, AfterValidator(_salt_pattern)]


def digest_of(document: BaseModel) -> str:
    """Hex SHA-256 of a document's canonical JSON."""
    return hashlib.sha256(canonical_json(document.model_dump(mode="json")).encode("ascii")).hexdigest()


class _Document(BaseModel):
    # Strict: a document is read as written (no "5" for 5, no 5.0 for 5), so its digest over the
    # re-serialised model equals the digest of the JSON as published.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def task_key(department: str, item: str) -> str:
    """How plans, commitments, bundles and verifications name a task: ``department/item``."""
    return f"{department}/{item}"


class TaskNamed(BaseModel):
    """A task of a plan named by its department and item; ``key`` is ``task_key`` of the two.
    (No config of its own: the request's ``TaskItem`` and the documents' ``_Task`` set theirs.)"""

    department: Text
    item: Text

    @property
    def key(self) -> str:
        return task_key(self.department, self.item)


class _Task(_Document, TaskNamed):
    """Something about one task (department/item) of a plan."""


class StratumCount(_Document):
    """One stratum of a task as committed: its size, effective ratio and number to draw."""

    stratum: StratumName
    pool_size: int = Field(ge=0)
    ratio_ppm: int = Field(ge=0, le=PPM)
    draw: int = Field(ge=0)


class TaskCommitment(_Task):
    """One department/item as committed: pool size and Merkle root, and per-stratum counts."""

    key_item: bool
    pool_size: int = Field(ge=0)
    pool_root: Hex32 = Field(description="RFC 6962 root over the subjects' leaves, (stratum, uscc) order")
    strata: list[StratumCount] = Field(description="every stratum, canonical order A, A_lead, B, C, D")

    @field_validator("strata")
    @classmethod
    def _canonical_strata(cls, value: list[StratumCount]) -> list[StratumCount]:
        if [s.stratum for s in value] != list(STRATA):
            raise ValueError(f"strata must list {list(STRATA)} in that order")
        return value


class DrawCommitmentV2(_Document):
    """Published before the draw; with the seed hidden behind its hash, nothing here can change unseen."""

    format: Literal["tiers-draw-v2/commitment"] = COMMITMENT_FORMAT
    plan_id: Text
    period_start: IsoDate
    period_end: IsoDate
    grades_as_of: IsoDate
    committed_at: UtcTime
    seed_commitment: Hex32 = Field(description="SHA-256 of the secret 32-byte seed")
    policy_hash: Hex32 = Field(description="SHA-256 of the policy JSON bytes embedded in the bundle")
    salt_source: Text = Field(description="where the public salt will come from, named before it exists")
    salt_pattern: SaltPattern = Field(
        description="the salt value's exact format: a full-match pattern (§16.1), e.g. \\d \\d \\d"
    )
    tasks: list[TaskCommitment] = Field(min_length=1)

    def digest(self) -> str:
        return digest_of(self)


class PublicSalt(_Document):
    """Public randomness that became known only after the commitment (no seed grinding)."""

    value: Text = Field(description="the value as published by the source, e.g. a lottery result")
    source: Text = Field(description="must equal the commitment's salt_source")
    known_at: UtcTime = Field(description="when the value became public")
    entered_at: UtcTime = Field(description="when it was entered for the draw")
    entered_by: Text = Field(description="who entered it (a second person, not the plan's owner)")


class BundleTask(_Task):
    """One task's public outcome: the drawn USCCs and one seal per stratum."""

    drawn: list[str] = Field(description="drawn USCCs, ascending")
    seals: dict[StratumName, Hex32] = Field(description="per stratum: the seal of its outcome")


class PublicBundle(_Document):
    """What anyone can check without a grade (docs/draw-algorithm.md §16)."""

    format: Literal["tiers-draw-v2/bundle"] = BUNDLE_FORMAT
    commitment: DrawCommitmentV2
    policy_json: str = Field(
        max_length=POLICY_JSON_MAX, description="the policy, exactly the bytes hashed into policy_hash"
    )
    seed: Hex32 = Field(description="the revealed seed")
    salt: PublicSalt
    drawn_at: UtcTime
    tasks: list[BundleTask]


class OpeningTask(_Task):
    """One task covering the subject: what it needs to check its leaf, the seal and its outcome."""

    stratum: StratumName
    nonce: Hex32
    leaf_index: int = Field(ge=0)
    path: list[Hex32] = Field(description="RFC 6962 audit path of the leaf in the pool tree")
    threshold: Hex32 | None = Field(description="the stratum's largest drawn key; None if it draws nobody")
    drawn_root: Hex32
    blind: Hex32
    drawn_index: int | None = Field(ge=0, description="index in the drawn-set tree; None if not drawn")
    drawn_path: list[Hex32] = Field(description="audit path in the drawn-set tree; empty if not drawn")

    @model_validator(mode="after")
    def _no_path_without_place(self) -> OpeningTask:
        if self.drawn_index is None and self.drawn_path:
            raise ValueError("drawn_path must be empty when drawn_index is null (an undrawn subject)")
        return self


class SubjectOpening(_Document):
    """A subject's private opening for one plan: one entry per task whose pool held it."""

    format: Literal["tiers-draw-v2/opening"] = OPENING_FORMAT
    plan_id: Text
    commitment_digest: Hex32
    uscc: str = Field(min_length=18, max_length=18)
    tasks: list[OpeningTask] = Field(min_length=1)

    @field_validator("tasks")
    @classmethod
    def _each_task_once(cls, value: list[OpeningTask]) -> list[OpeningTask]:
        keys = [(t.department, t.item) for t in value]
        if len(set(keys)) != len(keys):
            raise ValueError("a task is listed twice; rule: one entry per task whose pool holds the subject")
        return value


class StratumOutcome(_Document):
    """One stratum's sealed outcome as the plan keeps it."""

    stratum: StratumName
    threshold: Hex32 | None
    drawn_root: Hex32
    seal: Hex32


class TaskOutcome(_Task):
    """One task's sealed outcomes, one per stratum."""

    strata: list[StratumOutcome]


class SealedDraw(_Document):
    """The v2 part of a full plan (auditors only: the nonce key reveals every subject's stratum
    to whoever also holds the bundle)."""

    commitment: DrawCommitmentV2
    policy_json: str = Field(max_length=POLICY_JSON_MAX)
    nonce_key: Hex32
    salt: PublicSalt
    drawn_at: UtcTime
    tasks: list[TaskOutcome]
