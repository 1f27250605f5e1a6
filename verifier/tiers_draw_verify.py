#!/usr/bin/env python3
"""Independent verifier for ``tiers-draw-v2`` draws (双随机 inspection plans).

Written from the specification (docs/draw-algorithm.md §12–§20) with Python's standard library
only; it shares no code with the project that makes the plans. Copy this one file anywhere
with Python ≥ 3.11 and run:

    python3 tiers_draw_verify.py BUNDLE [--commitment COMMITMENT]            # anyone
    python3 tiers_draw_verify.py BUNDLE --subject USCC --opening OPENING     # one subject
    python3 tiers_draw_verify.py PLAN [--commitment COMMITMENT] [--bundle BUNDLE]   # auditors

It prints ``MATCH`` (exit 0) or ``MISMATCH: <check>: <what is wrong>`` (exit 1); ``--json``
prints every check. A file that is not a well-formed document exits 2. The checks, their
names and their order are those of §18, so the verdict can be compared with
``tiers plan verify`` check by check.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import hashlib
import itertools
import json
import math
import re
import sys

ALGORITHM = "tiers-draw-v2"
STRATA = ["A", "A_lead", "B", "C", "D"]
GRADES = ["A", "B", "C", "D"]
PPM = 1_000_000
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
EMPTY_ROOT = hashlib.sha256(b"").digest()

HEX = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")  # ASCII digits
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
POLICY_JSON_MAX = 100_000
# The salt pattern grammar (§16.1): literals, \d, escaped metacharacters, [..] classes, {m}/{m,n}.
_LITERAL = r"[ !\"#%&',\-/0-9:;<=>@A-Z_`a-z~]"
_CLASS_CHAR = r"[ !\"#%&',/0-9:;<=>@A-Z_`a-z~]"
_UNIT = rf"(?:{_LITERAL}|\\d|\\[\\.^$|?*+()\[\]{{}}]|\[(?:{_CLASS_CHAR}-{_CLASS_CHAR}|{_CLASS_CHAR})+\])"
SALT_PATTERN = re.compile(rf"(?:{_UNIT}(?:\{{[0-9]{{1,3}}(?:,[0-9]{{1,3}})?\}})?)+")


def tag(name: str) -> bytes:
    """T(name) = ASCII "tiers-draw-v2/<name>" and one NUL byte (§13)."""
    return f"{ALGORITHM}/{name}".encode("ascii") + b"\x00"


def sha256(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def canonical(value: object) -> str:
    """Canonical JSON (§13)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# --------------------------------------------------------------------------- documents (§16)


class Malformed(Exception):
    """The file is not a document of the form of §16."""


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Malformed(f"{where}: {what}")


def _object(value, where: str, required: list[str], optional: tuple[str, ...] = ()) -> dict:
    _need(isinstance(value, dict), where, "must be a JSON object")
    missing = [f for f in required if f not in value]
    extra = [f for f in value if f not in required and f not in optional]
    _need(not missing, where, f"missing fields {missing}")
    _need(not extra, where, f"unknown fields {extra}")
    return value


def _text(value, where: str) -> str:
    _need(
        isinstance(value, str) and 1 <= len(value) <= 500 and not CONTROL.search(value),
        where,
        "must be text of 1–500 characters without control characters",
    )
    return value


def _hex(value, where: str) -> str:
    _need(
        isinstance(value, str) and HEX.fullmatch(value) is not None,
        where,
        "must be 64 lowercase hex characters",
    )
    return value


def _count(value, where: str, most: int | None = None) -> int:
    _need(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0, where, "must be an integer ≥ 0"
    )
    _need(most is None or value <= most, where, f"must be at most {most}")
    return value


def _time(value, where: str) -> datetime.datetime:
    _need(
        isinstance(value, str) and TIME.fullmatch(value) is not None,
        where,
        "must be a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
    )
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{where}: not a real time") from None


def _date(value, where: str) -> None:
    _need(isinstance(value, str) and DATE.fullmatch(value) is not None, where, "must be a date YYYY-MM-DD")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise Malformed(f"{where}: not a real date") from None


def _salt_pattern(value, where: str) -> str:
    """A pattern of the grammar of §16.1, every count {m,n} with m ≤ n and n ≥ 1, every range a-b with a ≤ b."""
    _need(
        isinstance(value, str) and 1 <= len(value) <= 200 and SALT_PATTERN.fullmatch(value) is not None,
        where,
        "must be a salt pattern of §16.1 (literals, \\d, escaped metacharacters, [..] classes, {m}, {m,n})",
    )
    for low, high in re.findall(r"\{([0-9]+)(?:,([0-9]+))?\}", value):
        _need(int(high or low) >= 1 and int(low) <= int(high or low), where, "a count needs m ≤ n and n ≥ 1")
    for cls in re.findall(r"(?<!\\)\[([^\]]*)\]", value):
        for low, high in re.findall(r"(.)-(.)", cls):
            _need(low <= high, where, f"the range {low}-{high} is empty")
    return value


def _list(value, where: str) -> list:
    _need(isinstance(value, list), where, "must be a list")
    return value


def check_commitment(c, where: str = "commitment") -> dict:
    _object(
        c,
        where,
        [
            "format",
            "plan_id",
            "period_start",
            "period_end",
            "grades_as_of",
            "committed_at",
            "seed_commitment",
            "policy_hash",
            "salt_source",
            "salt_pattern",
            "tasks",
        ],
    )
    _need(c["format"] == "tiers-draw-v2/commitment", where, "format must be tiers-draw-v2/commitment")
    _text(c["plan_id"], f"{where}.plan_id")
    for field in ("period_start", "period_end", "grades_as_of"):
        _date(c[field], f"{where}.{field}")
    _time(c["committed_at"], f"{where}.committed_at")
    _hex(c["seed_commitment"], f"{where}.seed_commitment")
    _hex(c["policy_hash"], f"{where}.policy_hash")
    _text(c["salt_source"], f"{where}.salt_source")
    _salt_pattern(c["salt_pattern"], f"{where}.salt_pattern")
    _need(len(_list(c["tasks"], f"{where}.tasks")) >= 1, f"{where}.tasks", "must list at least one task")
    for i, t in enumerate(c["tasks"]):
        at = f"{where}.tasks[{i}]"
        _object(t, at, ["department", "item", "key_item", "pool_size", "pool_root", "strata"])
        _text(t["department"], f"{at}.department")
        _text(t["item"], f"{at}.item")
        _need(isinstance(t["key_item"], bool), f"{at}.key_item", "must be true or false")
        _count(t["pool_size"], f"{at}.pool_size")
        _hex(t["pool_root"], f"{at}.pool_root")
        strata = _list(t["strata"], f"{at}.strata")
        _need(
            [s.get("stratum") if isinstance(s, dict) else None for s in strata] == STRATA,
            f"{at}.strata",
            f"must list {STRATA} in that order",
        )
        for s in strata:
            _object(s, f"{at}.strata", ["stratum", "pool_size", "ratio_ppm", "draw"])
            _count(s["pool_size"], f"{at}.strata.pool_size")
            _count(s["ratio_ppm"], f"{at}.strata.ratio_ppm", PPM)
            _count(s["draw"], f"{at}.strata.draw")
    return c


def check_salt(s, where: str = "salt") -> dict:
    _object(s, where, ["value", "source", "known_at", "entered_at", "entered_by"])
    for field in ("value", "source", "entered_by"):
        _text(s[field], f"{where}.{field}")
    _time(s["known_at"], f"{where}.known_at")
    _time(s["entered_at"], f"{where}.entered_at")
    return s


def _check_draw_parts(d: dict, where: str, secret: str) -> None:
    """What a bundle and a plan's draw_v2 both carry: the commitment, the policy JSON, a hex
    secret (the bundle's revealed ``seed``, the plan's ``nonce_key``), the salt and drawn_at."""
    check_commitment(d["commitment"], f"{where}.commitment")
    _need(
        isinstance(d["policy_json"], str) and len(d["policy_json"]) <= POLICY_JSON_MAX,
        f"{where}.policy_json",
        f"must be a string of at most {POLICY_JSON_MAX} characters",
    )
    _hex(d[secret], f"{where}.{secret}")
    check_salt(d["salt"], f"{where}.salt")
    _time(d["drawn_at"], f"{where}.drawn_at")


def check_bundle(b) -> dict:
    _object(b, "bundle", ["format", "commitment", "policy_json", "seed", "salt", "drawn_at", "tasks"])
    _need(b["format"] == "tiers-draw-v2/bundle", "bundle", "format must be tiers-draw-v2/bundle")
    _check_draw_parts(b, "bundle", "seed")
    for i, t in enumerate(_list(b["tasks"], "bundle.tasks")):
        at = f"bundle.tasks[{i}]"
        _object(t, at, ["department", "item", "drawn", "seals"])
        _text(t["department"], f"{at}.department")
        _text(t["item"], f"{at}.item")
        _need(
            all(isinstance(u, str) for u in _list(t["drawn"], f"{at}.drawn")),
            f"{at}.drawn",
            "must list strings",
        )
        _need(isinstance(t["seals"], dict), f"{at}.seals", "must be an object")
        for name, value in t["seals"].items():
            _need(name in STRATA, f"{at}.seals", f"unknown stratum {name!r}")
            _hex(value, f"{at}.seals.{name}")
    return b


def check_opening(o) -> dict:
    _object(o, "opening", ["format", "plan_id", "commitment_digest", "uscc", "tasks"])
    _need(o["format"] == "tiers-draw-v2/opening", "opening", "format must be tiers-draw-v2/opening")
    _text(o["plan_id"], "opening.plan_id")
    _hex(o["commitment_digest"], "opening.commitment_digest")
    _need(isinstance(o["uscc"], str) and len(o["uscc"]) == 18, "opening.uscc", "must be 18 characters")
    _need(len(_list(o["tasks"], "opening.tasks")) >= 1, "opening.tasks", "must list at least one task")
    for i, t in enumerate(o["tasks"]):
        at = f"opening.tasks[{i}]"
        _object(
            t,
            at,
            [
                "department",
                "item",
                "stratum",
                "nonce",
                "leaf_index",
                "path",
                "threshold",
                "drawn_root",
                "blind",
                "drawn_index",
                "drawn_path",
            ],
        )
        _text(t["department"], f"{at}.department")
        _text(t["item"], f"{at}.item")
        _need(t["stratum"] in STRATA, f"{at}.stratum", f"must be one of {STRATA}")
        for field in ("nonce", "drawn_root", "blind"):
            _hex(t[field], f"{at}.{field}")
        _count(t["leaf_index"], f"{at}.leaf_index")
        for field in ("path", "drawn_path"):
            for h in _list(t[field], f"{at}.{field}"):
                _hex(h, f"{at}.{field}")
        if t["threshold"] is not None:
            _hex(t["threshold"], f"{at}.threshold")
        if t["drawn_index"] is not None:
            _count(t["drawn_index"], f"{at}.drawn_index")
        else:
            _need(not t["drawn_path"], f"{at}.drawn_path", "must be empty when drawn_index is null")
    keys = [(t["department"], t["item"]) for t in o["tasks"]]
    _need(len(set(keys)) == len(keys), "opening.tasks", "a task is listed twice")
    return o


def check_plan(p) -> dict:
    """The parts of a full v2 plan this verifier reads (§16.5)."""
    _need(isinstance(p, dict), "plan", "must be a JSON object")
    for field in ("plan_id", "commitment", "draw_seed_hex", "policy", "tasks", "visits", "draw_v2"):
        _need(field in p, "plan", f"missing field {field!r}")
    d = _object(
        p["draw_v2"], "plan.draw_v2", ["commitment", "policy_json", "nonce_key", "salt", "drawn_at", "tasks"]
    )
    _check_draw_parts(d, "plan.draw_v2", "nonce_key")
    for i, t in enumerate(_list(d["tasks"], "plan.draw_v2.tasks")):
        at = f"plan.draw_v2.tasks[{i}]"
        _object(t, at, ["department", "item", "strata"])
        for s in _list(t["strata"], f"{at}.strata"):
            _object(s, f"{at}.strata", ["stratum", "threshold", "drawn_root", "seal"])
    for i, t in enumerate(_list(p["tasks"], "plan.tasks")):
        for field in ("department", "item", "pool", "k_per_stratum", "ratios", "drawn"):
            _need(field in t, f"plan.tasks[{i}]", f"missing field {field!r}")
    return p


# --------------------------------------------------------------------------- Merkle trees (§15)


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00", data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01", left, right)


def tree_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH over the leaves (level by level, an odd last node carried up)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def proves(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 inclusion check."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --------------------------------------------------------------------------- hashes of §14


def task_digest(plan_id: str, department: str, item: str) -> bytes:
    return sha256(tag("task"), "\x00".join([plan_id, department, item]).encode("utf-8"))


def subject_leaf(digest: bytes, uscc: str, code: int, nonce: bytes) -> bytes:
    return leaf_hash(tag("leaf") + digest + uscc.encode("ascii") + bytes([code]) + nonce)


def subject_key(seed: bytes, salt: str, leaf: bytes) -> bytes:
    return sha256(tag("key"), seed, sha256(tag("salt"), salt.encode("utf-8")), leaf)


def drawn_list_digest(drawn: list[str]) -> bytes:
    return sha256(tag("drawn-list"), "".join(drawn).encode("ascii"))


def seal_of(
    digest: bytes,
    code: int,
    threshold: bytes | None,
    drawn_root: bytes,
    listed: bytes,
    salt: str,
    blind: bytes,
) -> bytes:
    salted = sha256(tag("salt"), salt.encode("utf-8"))
    return sha256(
        tag("seal"), digest, bytes([code]), threshold or bytes(32), drawn_root, listed, salted, blind
    )


# --------------------------------------------------------------------------- policy (§6, §17)

FLOATS = {"floor_ratio": (False, 1), "general_cap": (False, 1), "a_with_lead_ratio": (False, 1)}
INTS = {
    "lead_window_days": (1, 3650),
    "max_inspections_12m": (1, None),
    "inspectors_per_subject": (1, 10),
    "publication_days": (1, 365),
}
BOOLS = ("a_no_visit_without_lead", "recuse_same_district", "key_item")
CHOICES = {"ungraded_grade": GRADES, "publication_day_basis": ["working", "natural"]}
RULES = [*FLOATS, *INTS, *BOOLS, *CHOICES, "grade_ratios"]


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rule_problem(field: str, value, *, partial: bool = False) -> str | None:
    """What is wrong with one rule's value (§17); ``partial``: an override's grade_ratios (any of A–D)."""
    if field in FLOATS:
        if not _number(value) or not 0 < value <= 1:
            return f"{field} = {value!r} must be a number in (0, 1]"
    elif field in INTS:
        low, high = INTS[field]
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
            return f"{field} = {value!r} must be an integer in [{low}, {high or '∞'}]"
    elif field in BOOLS:
        if not isinstance(value, bool):
            return f"{field} = {value!r} must be true or false"
    elif field in CHOICES:
        if not isinstance(value, str) or value not in CHOICES[field]:
            return f"{field} = {value!r} must be one of {CHOICES[field]}"
    elif field == "grade_ratios":
        if not isinstance(value, dict) or any(g not in GRADES or not _number(r) for g, r in value.items()):
            return f"grade_ratios = {value!r} must map grades A–D to numbers"
        if not partial and sorted(value) != GRADES:
            return f"grade_ratios = {value!r} must give each of A–D"
    return None


def rules_for(policy: dict, department: str | None, item: str | None, key_item: bool) -> dict:
    """defaults ← departments[d] ← items[t] (null = not set; grade_ratios merged grade by grade),
    then key_item = the committed one (§17)."""
    merged = dict(policy["defaults"])
    merged["grade_ratios"] = dict(merged["grade_ratios"])
    for layer in (policy["departments"].get(department or ""), policy["items"].get(item or "")):
        for field, value in (layer or {}).items():
            if value is None:
                continue
            if field == "grade_ratios":
                merged["grade_ratios"].update(value)
            else:
                merged[field] = value
    merged["key_item"] = key_item
    return merged


def _merged_problem(r: dict) -> str | None:
    ratios = r["grade_ratios"]
    if any(not r["floor_ratio"] <= ratios[g] <= 1 for g in GRADES):
        return "every grade ratio must lie in [floor_ratio, 1]"
    if [ratios[g] for g in GRADES] != sorted(ratios[g] for g in GRADES):
        return "grade ratios must not decrease from A to D"
    if r["a_no_visit_without_lead"] and ratios["A"] != r["floor_ratio"]:
        return "with a_no_visit_without_lead, grade_ratios.A must equal floor_ratio"
    if r["a_with_lead_ratio"] < r["floor_ratio"]:
        return "a_with_lead_ratio must be at least floor_ratio"
    return None


def _is_text(value) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 500 and not CONTROL.search(value)


def policy_problem(policy) -> str | None:
    """None if the policy is valid (§17), else what is wrong. Nothing is defaulted."""
    fields = ["name", "version", "defaults", "departments", "items"]
    if not isinstance(policy, dict) or sorted(policy) != sorted(fields):
        return f"the policy must be an object with exactly the fields {fields}"
    if not all(_is_text(policy[f]) for f in ("name", "version")):
        return "name and version must be text (1–500 characters, no control characters)"
    defaults = policy["defaults"]
    if not isinstance(defaults, dict) or sorted(defaults) != sorted(RULES):
        return f"defaults must hold exactly the rules {RULES}"
    for field, value in defaults.items():
        problem = _rule_problem(field, value)
        if problem:
            return f"defaults: {problem}"
    for group in ("departments", "items"):
        if not isinstance(policy[group], dict):
            return f"{group} must be an object"
        for name, layer in policy[group].items():
            if not _is_text(name) or not isinstance(layer, dict) or set(layer) - set(RULES):
                return f"{group}.{name} must be named by text and hold only rules {RULES}"
            for field, value in layer.items():
                problem = value is not None and _rule_problem(field, value, partial=True)
                if problem:
                    return f"{group}.{name}: {problem}"
    for department in [None, *policy["departments"]]:
        for item in [None, *policy["items"]]:
            problem = _merged_problem(rules_for(policy, department, item, False))
            if problem:
                return f"rules for department={department!r}, item={item!r}: {problem}"
    return None


def ratio_to_ppm(ratio: float) -> int:
    return math.floor(ratio * PPM + 0.5)


def k_for(n: int, ppm: int) -> int:
    return min(n, (n * ppm + PPM - 1) // PPM)


def effective_ppm(sizes: dict[str, int], rules: dict) -> dict[str, int]:
    """ppm per stratum: configured ratios, then the general-item cap (§6)."""
    configured = {s: rules["grade_ratios"]["A" if s == "A_lead" else s] for s in STRATA}
    configured["A_lead"] = rules["a_with_lead_ratio"]
    ppm = {s: ratio_to_ppm(r) for s, r in configured.items()}
    if rules["key_item"]:
        return ppm
    floor_ppm, cap_ppm = ratio_to_ppm(rules["floor_ratio"]), ratio_to_ppm(rules["general_cap"])
    cap_k = sum(sizes.values()) * cap_ppm // PPM

    def scaled(lam: int) -> dict[str, int]:
        return {s: max(floor_ppm, ppm[s] * lam // PPM) for s in ppm}

    def total(p: dict[str, int]) -> int:
        return sum(k_for(sizes[s], p[s]) for s in p)

    if total(ppm) <= cap_k:
        return ppm
    lo, hi = 0, PPM
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(scaled(mid)) <= cap_k:
            lo = mid
        else:
            hi = mid - 1
    return scaled(lo)


# --------------------------------------------------------------------------- USCC (GB 32100-2015)


def valid_uscc(code: str) -> bool:
    if not isinstance(code, str) or len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    # first: a registration-authority code of GB 32100-2015 (1–9, A, N, Y; never 0)
    if code[0] not in "123456789ANY" or not all(c in "0123456789" for c in code[1:8]):
        return False
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(code[:17]))
    return USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


# --------------------------------------------------------------------------- checks (§18)


class Checks:
    def __init__(self) -> None:
        self.done: list[dict] = []

    def __call__(self, name: str, ok: bool, detail: str = "") -> bool:
        self.done.append({"name": name, "ok": bool(ok), "detail": "" if ok else detail})
        return bool(ok)

    def first_failure(self) -> dict | None:
        return next((c for c in self.done if not c["ok"]), None)


def key_of(task: dict) -> str:
    return f"{task['department']}/{task['item']}"


def digest_of(commitment: dict) -> str:
    return hashlib.sha256(canonical(commitment).encode("ascii")).hexdigest()


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def policy_checks(check: Checks, commitment: dict, seed_hex: str, policy_json: str) -> dict | None:
    """seed_commitment, policy_hash, policy; returns the policy, or None if it is not valid."""
    check(
        "seed_commitment",
        sha256(bytes.fromhex(seed_hex)).hex() == commitment["seed_commitment"],
        "SHA-256 of the revealed seed ≠ seed_commitment",
    )
    check(
        "policy_hash",
        hashlib.sha256(policy_json.encode("utf-8")).hexdigest() == commitment["policy_hash"],
        "SHA-256 of the policy bytes ≠ policy_hash",
    )
    try:
        policy = json.loads(policy_json)
    except ValueError as exc:
        check("policy", False, f"policy_json is not JSON: {exc}")
        return None
    problem = policy_problem(policy)
    check("policy", problem is None, f"the embedded policy is not valid: {problem}")
    return None if problem else policy


def salt_checks(check: Checks, commitment: dict, salt: dict, drawn_at: str) -> None:
    check(
        "salt_source",
        salt["source"] == commitment["salt_source"],
        f"the salt came from {salt['source']!r}, the commitment named {commitment['salt_source']!r}",
    )
    committed, known, entered, drawn = (
        _instant(x) for x in (commitment["committed_at"], salt["known_at"], salt["entered_at"], drawn_at)
    )
    if not known > committed:
        problem = (
            f"salt known at {salt['known_at']}, not after the commitment at {commitment['committed_at']}"
        )
    elif entered < known:
        problem = f"salt entered at {salt['entered_at']}, before it was known at {salt['known_at']}"
    elif drawn < entered:
        problem = f"draw at {drawn_at}, before the salt was entered at {salt['entered_at']}"
    else:
        problem = ""
    check(
        "salt_format",
        re.fullmatch(commitment["salt_pattern"], salt["value"], flags=re.ASCII) is not None,
        f"the salt value {salt['value']!r} is not in the form the commitment fixed",
    )
    check("salt_time", not problem, problem)


def count_checks(check: Checks, task: dict, policy: dict | None) -> None:
    key = key_of(task)
    sizes = {s["stratum"]: s["pool_size"] for s in task["strata"]}
    check(
        f"pool_size {key}",
        sum(sizes.values()) == task["pool_size"],
        "strata sizes do not add up to pool_size",
    )
    committed = {s["stratum"]: s["ratio_ppm"] for s in task["strata"]}
    if policy is not None:
        expected = effective_ppm(sizes, rules_for(policy, task["department"], task["item"], task["key_item"]))
        check(f"ratios {key}", expected == committed, f"ratios {committed} ≠ the policy's {expected} (ppm)")
    wrong = [s["stratum"] for s in task["strata"] if s["draw"] != k_for(s["pool_size"], s["ratio_ppm"])]
    check(f"draw_counts {key}", not wrong, f"number to draw ≠ ceil(pool size × ratio) for {wrong}")


def public_checks(check: Checks, bundle: dict, published: dict | None) -> None:
    commitment = bundle["commitment"]
    if published is not None:
        check(
            "published_commitment",
            digest_of(published) == digest_of(commitment),
            "the commitment differs from the one published before the draw",
        )
    policy = policy_checks(check, commitment, bundle["seed"], bundle["policy_json"])
    salt_checks(check, commitment, bundle["salt"], bundle["drawn_at"])
    committed_keys = [key_of(t) for t in commitment["tasks"]]
    check(
        "tasks",
        committed_keys == [key_of(t) for t in bundle["tasks"]],
        "the bundle's tasks are not the committed ones",
    )
    outcomes = {key_of(t): t for t in bundle["tasks"]}
    for task in commitment["tasks"]:
        key = key_of(task)
        count_checks(check, task, policy)
        outcome = outcomes.get(key)
        if outcome is None:
            continue
        check(f"seals {key}", sorted(outcome["seals"]) == sorted(STRATA), "a stratum has no seal")
        drawn = outcome["drawn"]
        bad = [u for u in drawn if not valid_uscc(u)]
        ascending = all(a < b for a, b in itertools.pairwise(drawn))
        check(
            f"drawn_list {key}",
            not bad and ascending,
            f"{bad[0]!r} is not a valid USCC" if bad else "not strictly ascending",
        )
        expected = sum(s["draw"] for s in task["strata"])
        check(f"drawn_count {key}", len(drawn) == expected, f"{len(drawn)} drawn ≠ {expected} to draw")


def subject_checks(check: Checks, bundle: dict, opening: dict, uscc: str) -> None:
    commitment = bundle["commitment"]
    check(
        "opening",
        opening["uscc"] == uscc
        and opening["plan_id"] == commitment["plan_id"]
        and opening["commitment_digest"] == digest_of(commitment),
        "the opening is for another subject, plan or commitment",
    )
    committed = {key_of(t): t for t in commitment["tasks"]}
    outcomes = {key_of(t): t for t in bundle["tasks"]}
    seed = bytes.fromhex(bundle["seed"])
    for entry in opening["tasks"]:
        key = key_of(entry)
        task, outcome = committed.get(key), outcomes.get(key)
        if task is None or outcome is None:
            check(f"pool_membership {key}", False, f"the bundle has no task {key}")
            continue
        code = STRATA.index(entry["stratum"])
        digest = task_digest(commitment["plan_id"], entry["department"], entry["item"])
        leaf = subject_leaf(digest, uscc, code, bytes.fromhex(entry["nonce"]))
        start = sum(s["pool_size"] for s in task["strata"][:code])
        in_range = start <= entry["leaf_index"] < start + task["strata"][code]["pool_size"]
        ok = proves(
            leaf,
            entry["leaf_index"],
            task["pool_size"],
            [bytes.fromhex(h) for h in entry["path"]],
            bytes.fromhex(task["pool_root"]),
        )
        check(
            f"pool_membership {key}",
            ok and in_range,
            "the leaf is not in the committed pool at its stratum's place",
        )
        k = task["strata"][code]["draw"]
        threshold = None if entry["threshold"] is None else bytes.fromhex(entry["threshold"])
        by_rule = (
            k > 0 and threshold is not None and subject_key(seed, bundle["salt"]["value"], leaf) <= threshold
        )
        drawn = outcome["drawn"]
        at = bisect.bisect_left(drawn, uscc)
        listed = at < len(drawn) and drawn[at] == uscc
        check(
            f"selection {key}",
            by_rule == listed,
            "listed as drawn, but its key is above the threshold"
            if listed
            else "its key is within the threshold, but it is not listed as drawn",
        )
        if listed:
            in_set = entry["drawn_index"] is not None and proves(
                leaf_hash(tag("drawn") + leaf),
                entry["drawn_index"],
                k,
                [bytes.fromhex(h) for h in entry["drawn_path"]],
                bytes.fromhex(entry["drawn_root"]),
            )
        else:
            in_set = entry["drawn_index"] is None
        check(
            f"drawn_set {key}",
            in_set,
            "not in its stratum's drawn set" if listed else "undrawn, yet given a drawn-set place",
        )
        expected = seal_of(
            digest,
            code,
            threshold,
            bytes.fromhex(entry["drawn_root"]),
            drawn_list_digest(drawn),
            bundle["salt"]["value"],
            bytes.fromhex(entry["blind"]),
        )
        check(
            f"seal {key}",
            outcome["seals"].get(entry["stratum"]) == expected.hex(),
            "the seal does not open: the drawn list, salt, threshold or drawn set differ from those sealed",
        )


def _stratum(grade: str, lead: int) -> str:
    return "A_lead" if grade == "A" and lead else grade


def _bundle_of(plan: dict) -> dict:
    sealed = plan["draw_v2"]
    drawn = {key_of(t): t["drawn"] for t in plan["tasks"]}
    return {
        "format": "tiers-draw-v2/bundle",
        "commitment": sealed["commitment"],
        "policy_json": sealed["policy_json"],
        "seed": plan["draw_seed_hex"],
        "salt": sealed["salt"],
        "drawn_at": sealed["drawn_at"],
        "tasks": [
            {
                "department": t["department"],
                "item": t["item"],
                "drawn": drawn.get(key_of(t), []),
                "seals": {s["stratum"]: s["seal"] for s in t["strata"]},
            }
            for t in sealed["tasks"]
        ],
    }


def plan_checks(check: Checks, plan: dict, published: dict | None, bundle: dict | None) -> None:
    sealed = plan["draw_v2"]
    commitment = sealed["commitment"]
    summary = plan["commitment"]
    if published is not None:
        if published.get("format") == "tiers-draw-v2/commitment":
            ok = digest_of(published) == digest_of(commitment)
        else:
            ok = published == summary
        check("published_commitment", ok, "the plan's commitment differs from the one published")
    check(
        "plan_commitment",
        summary.get("draw_algorithm") == ALGORITHM
        and summary.get("plan_id") == commitment["plan_id"] == plan["plan_id"]
        and summary.get("draw_seed_commitment") == commitment["seed_commitment"]
        and summary.get("policy_hash") == commitment["policy_hash"]
        and summary.get("pool_hashes") == {key_of(t): t["pool_root"] for t in commitment["tasks"]}
        and summary.get("public_salt") == sealed["salt"]["value"],
        "the plan's commitment summary differs from its v2 commitment",
    )
    try:
        seed = bytes.fromhex(plan["draw_seed_hex"])
    except (TypeError, ValueError):
        seed = b""
    policy = policy_checks(check, commitment, seed.hex(), sealed["policy_json"])
    try:
        same_policy = json.loads(sealed["policy_json"]) == plan["policy"]
    except ValueError:
        same_policy = False
    check("plan_policy", same_policy, "the plan's policy differs from the hashed policy bytes")
    salt_checks(check, commitment, sealed["salt"], sealed["drawn_at"])
    keys = [key_of(t) for t in commitment["tasks"]]
    plan_keys, sealed_keys = [key_of(t) for t in plan["tasks"]], [key_of(t) for t in sealed["tasks"]]
    check("tasks", keys == plan_keys == sealed_keys, "the plan's, committed and sealed tasks differ")
    draws, outcomes = {key_of(t): t for t in plan["tasks"]}, {key_of(t): t for t in sealed["tasks"]}
    nonce_key = bytes.fromhex(sealed["nonce_key"])
    for task in commitment["tasks"]:
        key = key_of(task)
        count_checks(check, task, policy)
        td, outcome = draws.get(key), outcomes.get(key)
        if td is None or outcome is None:
            continue
        pool = td["pool"]
        usccs = [row[0] for row in pool]
        well_formed = (
            all(isinstance(u, str) and len(u) == 18 and u.isascii() for u in usccs)
            and all(a < b for a, b in itertools.pairwise(usccs))
            and all(row[1] in GRADES and row[2] in (0, 1) for row in pool)
        )
        if not well_formed:
            check(
                f"pool_root {key}",
                False,
                "the pool is not canonical (USCCs ascending, grades A–D, leads 0/1)",
            )
            continue
        digest = task_digest(commitment["plan_id"], task["department"], task["item"])
        codes = [STRATA.index(_stratum(g, lead)) for _, g, lead in pool]
        leaves = [
            subject_leaf(digest, u, c, sha256(tag("nonce"), nonce_key, digest, u.encode("ascii")))
            for u, c in zip(usccs, codes, strict=False)
        ]
        order = sorted(range(len(pool)), key=lambda i: (codes[i], usccs[i]))
        sizes = [codes.count(c) for c in range(len(STRATA))]
        root_ok = tree_root([leaves[i] for i in order]).hex() == task["pool_root"] and sizes == [
            s["pool_size"] for s in task["strata"]
        ]
        check(
            f"pool_root {key}",
            root_ok,
            "the pool's per-stratum sizes or leaf root differ from the commitment",
        )
        draw = {s["stratum"]: s["draw"] for s in task["strata"]}
        ppm = {s["stratum"]: s["ratio_ppm"] for s in task["strata"]}
        plan_ppm = {s.get("stratum"): s.get("ratio_ppm") for s in td["ratios"].get("strata", [])}
        check(
            f"k_per_stratum {key}",
            td["k_per_stratum"] == draw and plan_ppm == ppm,
            "the plan's k per stratum or ratios differ from the committed ones",
        )
        if not root_ok:
            continue
        keys_of = [subject_key(seed, sealed["salt"]["value"], leaf) for leaf in leaves]
        drawn_by_stratum: list[list[int]] = []
        problem = ""
        for code, name in enumerate(STRATA):
            members = sorted((i for i in range(len(pool)) if codes[i] == code), key=lambda i: keys_of[i])
            k = draw[name]
            if k > len(members):
                problem = f"stratum {name}: cannot draw {k} of {len(members)}"
            elif 0 < k < len(members) and keys_of[members[k - 1]] == keys_of[members[k]]:
                problem = f"stratum {name}: the k-th and (k+1)-th keys are equal (a SHA-256 collision)"
            drawn_by_stratum.append(sorted(members[:k], key=lambda i: usccs[i]))
        recomputed = sorted(usccs[i] for members in drawn_by_stratum for i in members)
        listed = drawn_list_digest(recomputed)  # the seals were made over the list the rule draws
        recomputed_outcomes = []
        for code, drawn_members in enumerate(drawn_by_stratum):
            threshold = max((keys_of[i] for i in drawn_members), default=None)
            drawn_root = tree_root([leaf_hash(tag("drawn") + leaves[i]) for i in drawn_members])
            blind = sha256(tag("blind"), nonce_key, digest, bytes([code]))
            recomputed_outcomes.append(
                {
                    "stratum": STRATA[code],
                    "threshold": None if threshold is None else threshold.hex(),
                    "drawn_root": drawn_root.hex(),
                    "seal": seal_of(
                        digest, code, threshold, drawn_root, listed, sealed["salt"]["value"], blind
                    ).hex(),
                }
            )
        if problem:
            check(f"drawn {key}", False, problem)
            continue
        check(
            f"drawn {key}",
            recomputed == td["drawn"],
            "the published list ≠ the recomputed draw",
        )
        check(
            f"outcomes {key}",
            recomputed_outcomes == outcome["strata"],
            "stored thresholds, drawn-set roots or seals ≠ recomputed",
        )
    visit_items = sorted((v["uscc"], i) for v in plan["visits"] for i in v["items"])
    task_items = sorted((u, t["item"]) for t in plan["tasks"] for u in t["drawn"])
    check("visits_cover_draws", visit_items == task_items, "the visits do not cover exactly the drawn pairs")
    if bundle is not None:
        check(
            "bundle",
            canonical(_bundle_of(plan)) == canonical(bundle),
            "the bundle is not the one this plan publishes",
        )


# --------------------------------------------------------------------------- command line


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise Malformed(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Malformed(f"{path}: must be a JSON object")
    return data


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document", help="a bundle, or a full tiers-draw-v2 plan")
    parser.add_argument("--commitment", help="the commitment published before the draw")
    parser.add_argument("--subject", help="USCC of the subject whose opening is checked")
    parser.add_argument("--opening", help="that subject's opening")
    parser.add_argument("--bundle", help="with a plan: also check this bundle is the plan's")
    parser.add_argument("--json", action="store_true", help="print every check as JSON")
    args = parser.parse_args(argv)
    check = Checks()
    try:
        document = _read(args.document)
        published = None
        if args.commitment:
            published = _read(args.commitment)
            if published.get("format") == "tiers-draw-v2/commitment":
                check_commitment(published)
        if (args.subject is None) != (args.opening is None):
            raise Malformed("--subject and --opening go together")
        if document.get("format") == "tiers-draw-v2/bundle":
            bundle = check_bundle(document)
            if published is not None and published.get("format") != "tiers-draw-v2/commitment":
                raise Malformed(f"{args.commitment}: not a tiers-draw-v2 commitment")
            opening = check_opening(_read(args.opening)) if args.opening else None
            public_checks(check, bundle, published)
            if opening is not None:
                subject_checks(check, bundle, opening, args.subject)
        elif "draw_v2" in document or "tasks" in document:
            if args.subject:
                raise Malformed("--subject/--opening check a subject against the bundle, not the plan")
            if document.get("draw_v2") is None:
                raise Malformed(
                    "a tiers-draw-v1 plan: check it with `tiers plan verify` (this verifier covers v2)"
                )
            plan = check_plan(document)
            bundle = check_bundle(_read(args.bundle)) if args.bundle else None
            plan_checks(check, plan, published, bundle)
        else:
            raise Malformed(f"{args.document}: neither a tiers-draw-v2 bundle nor a plan")
    except Malformed as exc:
        return 2, f"error: {exc}"
    failure = check.first_failure()
    if args.json:
        return (1 if failure else 0), json.dumps(
            {
                "match": failure is None,
                "first_difference": None if failure is None else f"{failure['name']}: {failure['detail']}",
                "checks": check.done,
            },
            ensure_ascii=False,
        )
    return (1, f"MISMATCH: {failure['name']}: {failure['detail']}") if failure else (0, "MATCH")


def main() -> None:
    code, text = run(sys.argv[1:])
    print(text, file=sys.stderr if code == 2 else sys.stdout)
    sys.exit(code)


if __name__ == "__main__":
    main()
