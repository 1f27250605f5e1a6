"""The grade reads of issue 22 served by different checkouts (or settings) in turn, on one city
database built by ``city_scale.py --db-dir DIR --build-only`` (``DIR/<size>``): per phase a fresh
uvicorn (2 workers), the single logged read at ``--rate`` for ``--duration`` s (open loop:
``api.py``), then ``--batches`` batch reads of 1,000 random subjects; with the storage bytes the
server's processes read and wrote per request (``/proc/<pid>/io``: reads that missed the OS's
cache). A tree ``PATH|KEY=VALUE`` is that checkout served with one more setting.

Usage: PYTHONPATH=. flock /tmp/bench.lock timeout 900 .venv/bin/python benchmarks/grade_reads_ab.py \
           --size-dir DIR/300000 --size 300000 --trees ../main . '.|TIERS_EVENT_LOOP_READS=false' --rounds 2
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from api import PURPOSE, batch_throughput, drain, free_port, measured_phase, service_env, service_settings, stop_uvicorn, wait_healthy  # noqa
from city_scale import _codes  # noqa


def start(tree: str, port: int, env: dict, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory", "--host", "127.0.0.1", "--port",
           str(port), "--workers", "2", "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http",
           "httptools"]
    tree = str(Path(tree).resolve())
    return subprocess.Popen(cmd, env={**env, "PYTHONPATH": tree}, cwd=tree, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def tree_io(pid: int) -> tuple[int, int]:
    """(read_bytes, write_bytes) of pid and its children (storage I/O)."""
    import glob
    r = w = 0
    pids = {pid}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            parts = Path(stat).read_text().split()
            if int(parts[3]) == pid:
                pids.add(int(parts[0]))
        except (OSError, ValueError, IndexError):
            pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/io").read_text().splitlines():
                k, v = line.split(":")
                if k == "read_bytes":
                    r += int(v)
                elif k == "write_bytes":
                    w += int(v)
        except OSError:
            pass
    return r, w


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size-dir", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--trees", nargs="+", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--profile", default=None, help="py-spy output prefix (records the workers)")
    p.add_argument("--extra-env", nargs="*", default=[])
    p.add_argument("--skip-read", action="store_true")
    args = p.parse_args()
    from _users import bearer_for

    from serving.security import Principal

    tmp = Path(args.size_dir)
    url = f"sqlite:///{tmp / 'city.db'}"
    settings = service_settings(tmp, url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    extra = dict(kv.split("=", 1) for kv in args.extra_env)
    env = service_env(url, tmp / "data", settings, **extra)
    codes = list(_codes(args.size))
    pick = random.Random(int(time.time()))  # noqa: S311 - a sample of subjects, not a secret
    out = {}
    work = tmp / f"ab-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    for rnd in range(args.rounds):
        for tree in args.trees:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            path, _, setting = tree.partition("|")  # "tree|KEY=VALUE": that tree with one setting
            server = start(path, port, {**env, **dict([setting.split("=", 1)] if setting else [])}, work / "server.log")
            spy = None
            try:
                wait_healthy(base, server)
                import httpx
                for _ in range(20):
                    httpx.get(f"{base}/api/v1/auth/me", headers=headers)
                res = {}
                if args.profile:
                    spy = subprocess.Popen([os.environ.get("PY_SPY", "py-spy"), "record", "--pid", str(server.pid), "--subprocesses",
                                            "--idle", "--format", "raw", "--rate", "200", "-o",
                                            f"{args.profile}-{Path(tree.partition('|')[0]).name}-{rnd}.txt", "--nonblocking"],
                                           env=os.environ,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1)
                io0 = tree_io(server.pid)
                if not args.skip_read:
                    step = max(1, len(codes) // 5000)
                    start_at = pick.randrange(step)
                    paths = [f"/api/v1/subjects/{c}/grade?purpose=benchmark" for c in codes[start_at::step]]
                    read = measured_phase({"base": base, "headers": headers, "rate": args.rate,
                                           "duration": args.duration, "warmup": 3, "paths": paths}, work, "grade",
                                          server.pid)
                    res.update(p50=read["p50"], p99=read["p99"], max=read["max"], errors=sum(read["errors"].values()),
                               cpu_ms=read["cpu_ms"])
                    drain(base)
                    io1 = tree_io(server.pid)
                    sent = (args.duration + 3) * args.rate
                    res.update(read_kb_per_req=(io1[0] - io0[0]) / 1024 / sent, write_kb_per_req=(io1[1] - io0[1]) / 1024 / sent)
                    io0 = io1
                batch = [batch_throughput(base, headers, pick.sample(codes, 1000), 1, 1) for _ in range(args.batches)]
                io1 = tree_io(server.pid)
                res.update(batch_read_mb=(io1[0] - io0[0]) / 2**20 / args.batches, batch_write_mb=(io1[1] - io0[1]) / 2**20 / args.batches)
                res["batch"] = statistics.median(batch)
                res["batches"] = [round(b) for b in batch]
                if spy is not None:
                    spy.terminate()
                    spy.wait(timeout=30)
                    spy = None
                print(f"round {rnd} {tree}: {json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items()})}",
                      flush=True)
                out.setdefault(tree, []).append(res)
            finally:
                if spy is not None:
                    spy.terminate()
                stop_uvicorn(server)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
