"""Benchmark: streaming ingestion of one large CSV in bounded memory (target: 5 GB under 2 GB RSS).

    flock /tmp/bench.lock .venv/bin/python benchmarks/ingest_stream.py                 # 5 GB
    flock /tmp/bench.lock .venv/bin/python benchmarks/ingest_stream.py --gigabytes 0.5  # quick

Data: a records CSV in the contract's layout (UTF-8, a few quoted multi-line descriptions, ~0.1 %
damaged rows of every kind the reader must survive) over 2,000 subjects, written once under
/tmp/tiers-bench-ingest/ and reused. Each measurement runs in its own subprocess; the parent polls
its peak RSS with psutil every 0.1 s. Baseline in the same run: what ingestion did before it
streamed, ``pandas.read_csv(dtype=str)`` of the whole file, on a prefix of ``--baseline-gigabytes``
(its RSS grows with the file, so it is measured on a prefix and its RSS per input GB is reported and
extrapolated to the full file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path("/tmp/tiers-bench-ingest")
ROOT = Path(__file__).resolve().parents[1]
HEADER = ("record_id,uscc,kind,subkind,severity,decision_date,end_date,publicity_end,amount,department,document_no,"
          "ref_record_id,verified,verified_on,exemption,inspection_item,description\n")


def _codes(n: int) -> list[str]:
    from stdnum.cn import uscc

    bodies = [f"91320102MA{i:07d}" for i in range(n)]
    return [b + uscc.calc_check_digit(b) for b in bodies]


def write_inputs(gigabytes: float, out: Path) -> tuple[Path, Path]:
    """subjects.csv and records.csv of about ``gigabytes`` GB (kept and reused across runs)."""
    out.mkdir(parents=True, exist_ok=True)
    records = out / f"records-{gigabytes:g}GB.csv"
    subjects = out / "subjects.csv"
    codes = _codes(2000)
    if not subjects.exists():
        rows = [f"{c},南京测试{i}有限公司,llc,C,320102,玄武区,2015-03-01,100,12,active,,," for i, c in enumerate(codes)]
        subjects.write_text("uscc,name,legal_form,industry,district_code,district_name,registered_on,"
                            "registered_capital,employees,status,status_date,legal_rep_name,legal_rep_id\n"
                            + "\n".join(rows) + "\n", encoding="utf-8")
    if records.exists():
        return subjects, records
    target = int(gigabytes * 1e9)
    rng = np.random.default_rng(7)
    code_arr = np.array(codes, dtype=object)
    tmp = records.with_suffix(".part")
    written, start = 0, 0
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        while written < target:
            n = 200_000
            ids = np.arange(start, start + n)
            who = code_arr[rng.integers(0, len(codes), n)]
            month = rng.integers(1, 13, n)
            day = rng.integers(1, 29, n)
            fine = rng.integers(100, 200_000, n)
            lines = [f"R{i:012d},{u},admin_penalty,,general,2025-{m:02d}-{d:02d},,2026-{m:02d}-{d:02d},{f},samr,"
                     f"宁市监罚〔2025〕{i}号,,,,,,违反市场监管规定，罚款处理，编号{i}\n"
                     for i, u, m, d, f in zip(ids, who, month, day, fine, strict=True)]
            # every 1,000th row: a damage the reader must survive, or a legitimate multi-line field
            for j in range(0, n, 1000):
                kind = (start + j) // 1000 % 5
                body = lines[j].rstrip("\n")
                head = body.rsplit(",", 1)[0]
                fields = body.split(",")
                fields[8] = "inf"
                lines[j] = (f'{head},"说明第一行\n第二行"\n', f'{head},"引号没有闭合\n', body + ",多余字段\n",
                            body.replace(",samr,", ",sa\x07mr,") + "\n", ",".join(fields) + "\n")[kind]
            chunk = "".join(lines)
            fh.write(chunk)
            written += len(chunk.encode("utf-8"))
            start += n
    tmp.rename(records)
    return subjects, records


# the child logs features.ingest's and features.store's phase boundaries ("phase: …", DEBUG) with
# their wall-clock time to stderr; the parent attributes each RSS sample to the phase it fell in
PHASE_LOG = ("import logging, sys\n"
             "h = logging.StreamHandler(sys.stderr); h.setFormatter(logging.Formatter('PHASE %(created).3f %(message)s'))\n"
             "for n in ('features.ingest', 'features.store'):\n"
             "    logging.getLogger(n).addHandler(h); logging.getLogger(n).setLevel(logging.DEBUG)\n")


def _phases(samples: list[tuple[float, int]], stderr: str, start: float) -> list[dict]:
    """Peak RSS per phase (in order of first occurrence): each sample belongs to the last phase begun."""
    marks = [(float(t), m.removeprefix("phase: ")) for line in stderr.splitlines() if line.startswith("PHASE ")
             for _, t, m in [line.split(" ", 2)] if m.startswith("phase: ")]
    out: dict[str, dict] = {}
    for t, rss in samples:
        name = next((m for at, m in reversed(marks) if at <= t), "start (imports, opening files)")
        row = out.setdefault(name, {"phase": name, "from_s": round(t - start, 1), "seconds": 0.0, "peak_rss_gb": 0.0})
        row["seconds"] = round(t - start - row["from_s"], 1)  # first to last sample in it
        row["peak_rss_gb"] = max(row["peak_rss_gb"], round(rss / 1e9, 3))
    return list(out.values())


def _measure(code: str) -> dict:
    """Run ``code`` in a subprocess; its JSON result plus wall time, peak RSS (psutil, 0.1 s) and
    the peak RSS of each phase it logs."""
    import tempfile

    import psutil

    t0, start = time.perf_counter(), time.time()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", PHASE_LOG + code], stdout=subprocess.PIPE, stderr=err,
                                cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        ps = psutil.Process(proc.pid)
        samples = []
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                samples.append((time.time(), rss))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
        out = proc.stdout.read().decode()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed ({proc.returncode}): {out[-2000:]} {stderr[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    peak = max((r for _, r in samples), default=0)
    result.update(wall_s=round(time.perf_counter() - t0, 2), peak_rss_gb=round(peak / 1e9, 3))
    phases = _phases(samples, stderr, start)
    if len(phases) > 1:
        result["phases"] = phases
        result["peak_phase"] = max(phases, key=lambda p: p["peak_rss_gb"])["phase"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=5.0)
    parser.add_argument("--baseline-gigabytes", type=float, default=0.5)
    args = parser.parse_args()
    subjects, records = write_inputs(args.gigabytes, CACHE)
    size_gb = records.stat().st_size / 1e9
    prefix = CACHE / f"prefix-{args.baseline_gigabytes:g}GB.csv"
    if not prefix.exists():
        # the old whole-file read fails on an unbalanced quote (the bug this replaces): its prefix leaves
        # out the lines with quotes, so the baseline measures memory, not that failure
        with records.open("rb") as src, prefix.open("wb") as dst:
            budget = int(args.baseline_gigabytes * 1e9)
            for line in src:
                if b'"' not in line and not line.startswith("第二行".encode()):
                    dst.write(line)
                    budget -= len(line)
                if budget <= 0:
                    break
    store = CACHE / "store"
    subprocess.run(["rm", "-rf", str(store)], check=True)
    ingest_code = (
        "import json; from datetime import datetime, UTC; from features.ingest import ingest\n"
        f"s = ingest(store={str(store)!r}, subjects={str(subjects)!r}, records={str(records)!r}, "
        "ingested_at=datetime(2026, 11, 22, tzinfo=UTC))\n"
        "f = s.files[-1]; print(json.dumps(dict(read=f.read, accepted=f.accepted, quarantined=f.quarantined, "
        "by_rule=f.by_rule, physical_lines=f.physical_lines)))"
    )
    baseline_code = (
        "import json, pandas as pd\n"
        f"f = pd.read_csv({str(prefix)!r}, dtype=str, keep_default_na=False, encoding_errors='surrogateescape', "
        "on_bad_lines='skip')\nprint(json.dumps(dict(rows=len(f))))"
    )
    base = _measure(baseline_code)
    prefix_gb = prefix.stat().st_size / 1e9
    stream = _measure(ingest_code)
    per_gb = base["peak_rss_gb"] / prefix_gb
    print(json.dumps({"file_gb": round(size_gb, 3), "streaming": stream,
                      "rows_per_s": round(stream["read"] / stream["wall_s"]),
                      "baseline_whole_file_read": {**base, "input_gb": round(prefix_gb, 3),
                                                   "rss_gb_per_input_gb": round(per_gb, 2),
                                                   "extrapolated_rss_gb_for_file": round(per_gb * size_gb, 1)},
                      "rss_ratio_streaming_to_baseline_extrapolated": round(stream["peak_rss_gb"] / (per_gb * size_gb), 3),
                      "conserved": stream["read"] == stream["accepted"] + stream["quarantined"]}, indent=2))


if __name__ == "__main__":
    main()
