"""The per-process SQLite writer queue hands the lock over in arrival order."""

from __future__ import annotations

import threading
import time

from utfall.store.db import FifoLock


def _queued(lock: FifoLock, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(lock._waiters) < n:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = FifoLock()
    assert lock.acquire(1)
    order: list[int] = []

    def waiter(i: int) -> None:
        assert lock.acquire(10)
        order.append(i)
        lock.release()

    threads = []
    for i in range(5):
        th = threading.Thread(target=waiter, args=(i,))
        th.start()
        _queued(lock, i + 1)  # thread i is queued before thread i + 1 starts
        threads.append(th)
    lock.release()
    for th in threads:
        th.join()
    assert order == [0, 1, 2, 3, 4]
    assert lock.acquire(0.1)  # free again after the last hand-over


def test_a_timed_out_waiter_leaves_the_queue() -> None:
    lock = FifoLock()
    assert lock.acquire(1)
    assert lock.acquire(0.05) is False
    assert len(lock._waiters) == 0
    lock.release()
    assert lock.acquire(0.1)
