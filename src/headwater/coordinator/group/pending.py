"""Pending responses: how a request that must wait is answered without threads.

JoinGroup waits until the join phase completes; a follower's SyncGroup waits until the leader
syncs. The coordinator returns a ``Pending`` at once and completes it (with a result or a
``KafkaApiError``) during a later call: another member's join, the leader's sync, a leave, or
the ``tick(now_ms)`` that notices a deadline. Completion runs the done-callbacks synchronously,
inside that coordinator call, in the order they were added.

How the two callers use it:

- asyncio server: ``fut = loop.create_future()``;
  ``pending.add_done_callback(lambda p: fut.set_result(p))``; ``await fut``, then build the
  response from ``p.result()`` (or from the error's code). The callbacks run on the loop
  thread, so ``set_result`` is safe; to persist records before answering, append
  ``coordinator.take_records()`` before awaiting.
- embedded client: call ``tick(now_ms)`` (or the other members' calls) until
  ``pending.done()``.

Not thread-safe: a Pending belongs to the thread that drives its coordinator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from headwater.errors import KafkaApiError

T = TypeVar("T")


class Pending(Generic[T]):
    """A response that is completed later by the coordinator (a minimal, thread-free future)."""

    __slots__ = ("_done", "_result", "_error", "_callbacks")

    def __init__(self) -> None:
        self._done = False
        self._result: T | None = None
        self._error: KafkaApiError | None = None
        self._callbacks: list[Callable[[Pending[T]], None]] = []

    def __repr__(self) -> str:
        if not self._done:
            return "<Pending waiting>"
        if self._error is not None:
            return f"<Pending error={self._error!r}>"
        return f"<Pending result={self._result!r}>"

    def done(self) -> bool:
        """True once a result or an error is set."""
        return self._done

    def result(self) -> T:
        """The result.

        Raises:
            KafkaApiError: the request completed with this error.
            RuntimeError: the request is still waiting.
        """
        if not self._done:
            raise RuntimeError("pending response is not complete yet")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def exception(self) -> KafkaApiError | None:
        """The error the request completed with, or None (also None while waiting)."""
        return self._error

    def add_done_callback(self, fn: Callable[[Pending[T]], None]) -> None:
        """Call ``fn(self)`` on completion; at once if already complete."""
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    # Coordinator side.

    def set_result(self, result: T) -> None:
        assert not self._done, "pending response completed twice"
        self._result = result
        self._finish()

    def set_exception(self, error: KafkaApiError) -> None:
        assert not self._done, "pending response completed twice"
        self._error = error
        self._finish()

    def _finish(self) -> None:
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    @classmethod
    def completed(cls, result: T) -> Pending[T]:
        p: Pending[T] = cls()
        p.set_result(result)
        return p

    @classmethod
    def failed(cls, error: KafkaApiError) -> Pending[T]:
        p: Pending[T] = cls()
        p.set_exception(error)
        return p
