"""bot/heap.py: a settled process's collector leaves the start-up objects alone, and a replaced structure is
freed by `resettle()`. Run in a child interpreter: freezing the test process's heap would keep every test's
garbage for good."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import gc, weakref
    from bot import heap

    class Node:
        pass

    heap.resettle()
    assert heap.frozen() == 0, "resettle() does nothing in a process that never settled"
    old = Node()
    old.me = old  # a reference cycle: only the collector frees it
    gone = weakref.ref(old)
    heap.settle()
    assert heap.frozen() > 0
    del old
    gc.collect()
    assert gone() is not None, "a frozen object is not walked by the collector"
    heap.resettle()  # e.g. the live knowledge base swapped in a new revision
    assert gone() is None, "resettle() frees what was replaced"
    assert heap.frozen() > 0
    print("ok")
    """
)


def test_settle_freezes_and_resettle_frees_what_was_replaced() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
