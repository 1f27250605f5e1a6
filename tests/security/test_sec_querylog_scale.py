"""The query log's check at city scale (issue 22): the checker's MAC of a stored entry is built from
cached pieces (``querylog.CanonicalHeads``), held here to ``canonical_entry`` (the definition) for
any content and any time zone; the incremental check reads the checkpoint file from its end
(``checkpoints.read_last_checkpoints``), the same lines a forward read gives, so its cost does not
grow with a year of checkpoints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from test_sec_querylog_batch import KEY, _entries

from serving.keys import signing_key
from serving.services import querylog
from serving.services.checkpoints import read_checkpoints, read_last_checkpoints, sign_checkpoint

SIGNING_HEX = "11" * 32
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-3, minutes=-30)), None]


@pytest.mark.parametrize("seed", range(5))
def test_the_checkers_cached_mac_is_the_entry_mac_of_any_entry(seed):
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    heads = querylog.CanonicalHeads()
    prev = "0" * 64
    for n, entry in enumerate(_entries(rng, 80), 1):
        zone = rng.choice(ZONES)  # stored times come back naive (SQLite) or in any zone
        at = entry.at.astimezone(zone) if zone else entry.at.replace(tzinfo=None)
        if rng.random() < 0.1:
            at = at.replace(microsecond=0)  # isoformat drops zero microseconds unless told
        stored = dataclasses.replace(entry, at=at, seq=n)
        utc = querylog.stored_time(at)
        # the time as the checker reads it unconverted: SQLite's text of the UTC time, or str() of
        # a time written by hand (no microseconds when zero, an offset when aware)
        as_text = [utc.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), str(at), str(utc)]
        for raw in [at, *as_text]:
            read = dataclasses.replace(stored, at=raw)
            assert heads.text(prev, read) == prev + querylog.canonical_entry(stored), raw
            assert heads.mac(KEY.encode(), prev, read) == querylog.entry_mac(KEY, prev, stored)
        prev = querylog.entry_mac(KEY, prev, stored)


def test_the_cached_mac_of_odd_values_falls_back_to_the_definition():
    entry = querylog.LoggedRead(at=dt.datetime(999, 1, 2, 3, 4, 5, tzinfo=dt.UTC), actor="a", actor_role="r",
                                actor_kind="person", uscc="X", purpose="p", endpoint="e", outcome="allowed",
                                personal_info_unmasked=1, seq=7)  # type: ignore[arg-type]
    odd = [entry, dataclasses.replace(entry, actor=None), dataclasses.replace(entry, uscc=None),  # type: ignore[arg-type]
           dataclasses.replace(entry, personal_info_unmasked=0)]  # type: ignore[arg-type]
    for value in odd:
        assert querylog.CanonicalHeads().text("p" * 64, value) == "p" * 64 + querylog.canonical_entry(value)


def _checkpoint_file(path, rng: random.Random, lines: int) -> None:
    """Signed checkpoints, with blank lines, garbage and forged signatures among them."""
    out = []
    for n in range(lines):
        kind = rng.random()
        if kind < 0.1:
            out.append("")
        elif kind < 0.2:
            out.append("{not json 检查点")
        elif kind < 0.3:
            forged = sign_checkpoint("22" * 32, n, "f" * 64, 1)
            out.append(forged.line())
        else:
            out.append(sign_checkpoint(SIGNING_HEX, n, f"{n:064x}", 1).line())
    path.write_text("\n".join(out) + ("\n" if rng.random() < 0.5 else ""), encoding="utf-8")


@pytest.mark.parametrize("seed", range(4))
def test_reading_the_last_checkpoints_backwards_gives_the_lines_a_forward_read_gives(tmp_path, seed):
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    key = signing_key(SIGNING_HEX).public_key()
    path = tmp_path / "checkpoints.jsonl"
    _checkpoint_file(path, rng, rng.randint(0, 60))
    forward = list(read_checkpoints(path, key))
    for block in (1, 7, 150, 1 << 16):
        for wanted in (1, 3, 1000):
            backward = read_last_checkpoints(path, key, wanted=wanted, block=block)
            expected = []
            for read in reversed(forward):
                expected.append(read)
                if sum(r.checkpoint is not None for r in expected) == wanted:
                    break
            assert [(r.checkpoint, r.problem) for r in backward] == [(r.checkpoint, r.problem) for r in expected]
            assert [r.line_no for r in backward] == [-(i + 1) for i in range(len(backward))]
    assert read_last_checkpoints(tmp_path / "absent.jsonl", key) == []


def test_the_incremental_check_reads_only_the_end_of_the_checkpoint_file(tmp_path):
    """A damaged line before the last checkpoints is the full check's to report; one after the
    last valid checkpoint (a forgery appended at the end) the incremental check reports too."""
    key = signing_key(SIGNING_HEX).public_key()
    path = tmp_path / "checkpoints.jsonl"
    lines = ["{damaged"] + [sign_checkpoint(SIGNING_HEX, n, f"{n:064x}", 1).line() for n in range(1, 40)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert all(r.checkpoint is not None for r in read_last_checkpoints(path, key))
    assert any(r.checkpoint is None for r in read_checkpoints(path, key))
    with path.open("a", encoding="utf-8") as out:
        out.write(sign_checkpoint("22" * 32, 99, "f" * 64, 1).line() + "\n")
    last = read_last_checkpoints(path, key)
    assert last[0].checkpoint is None and last[0].line_no == -1 and last[0].problem == "signature does not verify"
