"""The query log's check at city scale (issue 22): the incremental check reads the checkpoint file from its end
(``checkpoints.read_last_checkpoints``), the same lines a forward read gives, so its cost does not
grow with a year of checkpoints."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from serving.keys import signing_key
from serving.services.checkpoints import read_checkpoints, read_last_checkpoints, sign_checkpoint

SIGNING_HEX = "11" * 32
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(dt.timedelta(hours=-3, minutes=-30)), None]


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
