"""The thread of an on-demand worker (the query log's writer, its WAL flusher, its checkpoint
writer): started when work is handed over and none runs, ended by itself when idle.

The worker keeps its thread and a condition; its loop, under the condition, clears the thread
when it falls idle and returns, so that the next hand-over starts a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def wake_or_start(cond: threading.Condition, thread: threading.Thread | None, run: Callable[[], None],
                  name: str) -> threading.Thread:
    """The worker's thread told of new work: ``thread`` notified on ``cond`` if it runs, else a new
    daemon thread ``name`` started on ``run``; the caller keeps what is returned as its thread.
    Called under ``cond``. A start that fails (the process's thread limit) raises and returns
    nothing, so no thread that never ran is kept and taken for a running one: the next hand-over
    starts one."""
    if thread is not None:
        cond.notify_all()
        return thread
    started = threading.Thread(target=run, name=name, daemon=True)
    started.start()
    return started
