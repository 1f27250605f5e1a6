"""The raw fsync latency of a disk: write 4 KB then fsync, ``--count`` times, one file.

What a durable query-log commit waits for at least (SQLite's ``synchronous=FULL`` fsyncs the WAL
once per commit), measured apart from the service, so a latency figure of a logged read can be
read against it.

Usage: PYTHONPATH=. flock /tmp/bench.lock .venv/bin/python benchmarks/fsync_latency.py --dir DIR [--count 3000]
       (DIR on the disk the database lives on; the file is removed afterwards)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def fsync_latencies(directory: str, count: int, size: int = 4096, fdatasync: bool = False,
                    rewind_every: int = 256) -> list[float]:
    """Milliseconds of each ``write(size) + fsync`` (or ``fdatasync``), appending to a fresh file
    that is rewritten from its start every ``rewind_every`` writes (as a WAL restarts; 0: the
    file only grows, each fsync also commits its new size)."""
    fd, path = tempfile.mkstemp(prefix="fsync-", dir=directory)
    block = os.urandom(size)
    sync = os.fdatasync if fdatasync else os.fsync
    out = []
    try:
        for i in range(count):
            if rewind_every and i % rewind_every == 0:
                os.lseek(fd, 0, os.SEEK_SET)
            t = time.perf_counter()
            os.write(fd, block)
            sync(fd)
            out.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):.2f} ms, p99 {percentile(values, 0.99):.2f} ms, "
            f"p999 {percentile(values, 0.999):.2f} ms, max {max(values):.2f} ms (n={len(values)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--count", type=int, default=3000)
    args = p.parse_args()
    print(f"uptime: {os.getloadavg()}")
    print("write 4 KB + fsync, rewound every 256 (a WAL):", summary(fsync_latencies(args.dir, args.count)))
    print("write 4 KB + fdatasync, rewound every 256:    ",
          summary(fsync_latencies(args.dir, args.count, fdatasync=True)))
    print("write 4 KB + fsync, the file growing:         ",
          summary(fsync_latencies(args.dir, args.count, rewind_every=0)))


if __name__ == "__main__":
    main()
