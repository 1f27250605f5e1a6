"""Cyclic garbage collection paused around work that makes millions of short-lived containers.

CPython's collector runs every 700 net container allocations, and a full collection whenever
enough objects have outlived the younger ones: each walks every tracked container of the process
while holding the GIL. A plan over a city's pool, or a bulk load's frame (five validated reasons
per grade, their templates, the rows bound for the driver), makes millions of them; the
collections found no garbage there and cost seconds (a plan's worker missed uvicorn's 5 s ping)
or a fifth of a bulk load's CPU.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_paused() -> Iterator[None]:
    """No cyclic collection inside (reference counting frees as ever; a caller that repeats a unit
    of work inside calls ``collect_young`` after each, so memory stays bounded). The collector's
    state is restored (a caller that had it off keeps it off)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def collect_young() -> None:
    """One collection of the young generations: what the work since the last one left in cycles
    (the objects made meanwhile, never the whole heap)."""
    gc.collect(1)
