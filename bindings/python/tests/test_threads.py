"""One connection used from two threads: blocking calls release the GIL, so they overlap."""

from __future__ import annotations

import threading
import time


def test_two_threads_overlap_inside_native_calls(db):
    db.autocommit = True
    slow = ("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 400000) SELECT x FROM c)")
    spans = {0: [], 1: []}

    def worker(n: int) -> None:
        for _ in range(4):
            t0 = time.perf_counter()
            assert db.query(slow) == [(400000,)]
            spans[n].append((t0, time.perf_counter()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # If the GIL were held during a call, the other thread could not even enter its own call
    # until this one returned: no two spans could overlap.
    overlaps = sum(1 for a0, a1 in spans[0] for b0, b1 in spans[1] if a0 < b1 and b0 < a1)
    assert overlaps > 0, spans
