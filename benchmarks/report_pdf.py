"""The credit report's PDF render (issue 20 item 4): ``report_pdf.render_pdf`` with the process's
parsed CJK font against fpdf2's own ``add_font`` on every render (the baseline: what each render
did before), interleaved in one process so that the machine's load falls on both alike. Signing
is not included (pyhanko, the same either way).

Usage: .venv/bin/python benchmarks/report_pdf.py [--repeats 10]
Run under ``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api


def main(repeats: int) -> None:
    from serving import report_pdf

    font = report_pdf.find_cjk_font()
    rows = tuple(report_pdf.ReportRow(f"R{i}", "行政处罚", "一般", "2026-01-01", "2027-01-01", "市场监管局",
                                      f"宁市监罚〔2026〕{i}号") for i in range(12))
    content = report_pdf.ReportContent(
        serial="NJ-2026-000001", uscc="91320100MA1XXXXX9X", name="南京某某科技有限公司",
        issued_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC), valid_until=dt.date(2027, 1, 6),
        verify_url="https://credit.example.gov.cn/verify/NJ-2026-000001",
        subject_lines=(("法定代表人", "张三"), ("住所", "南京市玄武区")), records=rows, lists=rows[:2])
    cached = report_pdf._add_parsed_font

    def plain(pdf, family: str, f: tuple[Path, int]) -> None:
        pdf.add_font(family, "", str(f[0]), collection_font_number=f[1])

    print(f"{api.machine_facts()}; font {font[0]} #{font[1]}; 12 records, 2 list entries")
    report_pdf.render_pdf(content, font)  # imports, and the parsed font
    runs: dict[str, list[tuple[float, float]]] = {"fpdf2 add_font per render (baseline)": [], "parsed font": []}
    for _ in range(repeats):
        for name, add in zip(runs, (plain, cached), strict=True):
            report_pdf._add_parsed_font = add
            wall, cpu = time.perf_counter(), time.process_time()
            report_pdf.render_pdf(content, font)
            runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    report_pdf._add_parsed_font = cached
    medians = {}
    for name, r in runs.items():
        medians[name] = statistics.median(c for _, c in r) * 1e3
        print(f"{name:<40} CPU {medians[name]:6.1f} ms median (min {min(c for _, c in r) * 1e3:.1f}), "
              f"wall {statistics.median(w for w, _ in r) * 1e3:6.1f} ms median")
    base, now = medians.values()
    print(f"ratio parsed font / baseline, CPU: {now / base:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    main(parser.parse_args().repeats)
