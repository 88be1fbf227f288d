"""The server process's heap: the long-lived objects built at start-up kept out of the garbage collector's way.

A serving process holds a few hundred megabytes of objects that live as long as it does (the Japanese
dictionary, the knowledge base and its matcher, the crisis models, the SDKs). Python's collector walks all of
them at every full collection, which pauses every request for tens to hundreds of milliseconds, the more often
the more garbage requests make. `settle()` (after start-up, `concierge serve` only) moves what exists then into
the permanent generation (`gc.freeze`), so the collector walks only what requests make. When the live
knowledge base swaps in a new revision, `resettle()` lets the collector free the old one (it may hold
reference cycles) and freezes again: one full collection per revision, which is what happened before anyway.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def settle() -> None:
    """Collect once, then freeze what is left (called when the process has finished starting)."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("heap settled: %d objects frozen in %.2f s", gc.get_freeze_count(), time.perf_counter() - started)


def resettle() -> None:
    """After a long-lived structure was replaced: free the old one and freeze again (only when settled)."""
    if gc.get_freeze_count() == 0:
        return  # not a settled process (tests, the CLI): the collector works as usual
    gc.unfreeze()
    settle()


def frozen() -> int:
    """How many objects are frozen (0 when `settle()` was not called)."""
    return gc.get_freeze_count()
