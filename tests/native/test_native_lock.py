"""FastRLock: the producer's re-entrant lock that leaves the OS lock alone when uncontended.

Goal: the lock excludes other threads even while its owner has released the GIL (a send
pwrites without it), is re-entrant for its owner, refuses a release by a non-owner, and hands
the lock over to waiters without losing one.
Method: several threads increment a shared counter in a read / GIL-releasing sleep / write
critical section (a lost update shows any overlap), with re-entrant acquires inside; the
non-blocking acquire and the release errors are checked directly.
"""

from __future__ import annotations

import threading
import time

import pytest

from headwater._native._native import FastRLock


def test_reentrant_acquire_needs_as_many_releases() -> None:
    lock = FastRLock()
    with lock:
        with lock:
            assert lock._is_locked()
        assert lock._is_locked()
    assert not lock._is_locked()
    with pytest.raises(RuntimeError):
        lock.release()


def test_release_by_another_thread_is_refused() -> None:
    lock = FastRLock()
    lock.acquire()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert len(errors) == 1
    lock.release()
    assert not lock._is_locked()


def test_non_blocking_acquire_fails_while_another_thread_holds_it() -> None:
    lock = FastRLock()
    held = threading.Event()
    done = threading.Event()

    def owner() -> None:
        with lock:
            held.set()
            done.wait(10)

    t = threading.Thread(target=owner)
    t.start()
    assert held.wait(10)
    assert lock.acquire(blocking=False) is False
    done.set()
    t.join(10)
    assert lock.acquire(blocking=False) is True
    assert lock.acquire(blocking=False) is True  # re-entrant
    lock.release()
    lock.release()
    assert not lock._is_locked()


def test_owner_releasing_the_gil_inside_keeps_other_threads_out() -> None:
    lock = FastRLock()
    state = {"n": 0}
    threads_n, rounds = 4, 300
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(rounds):
                with lock:
                    seen = state["n"]
                    if i % 3 == 0:
                        time.sleep(0)  # releases the GIL while holding the lock
                    with lock:  # re-entrant inside the critical section
                        state["n"] = seen + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert state["n"] == threads_n * rounds
    assert not lock._is_locked()
    assert lock.acquire(blocking=False) is True  # nobody left waiting or holding
    lock.release()
