"""A feed of items (output lines, events) that a reader thread appends and a test waits on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FeedClosed(Exception):
    """Waiting ended without a match; `str()` says why (the feed closed, or time ran out)."""


class Feed(Generic[T]):
    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()
        self._closed = False

    def append(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def close(self) -> None:
        """No more items will come (the process ended)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def items(self) -> list[T]:
        with self._changed:
            return list(self._items)

    def mark(self) -> int:
        """The current count; pass it as `since` to wait for a *new* item."""
        with self._changed:
            return len(self._items)

    def wait(
        self, predicate: Callable[[T], object], timeout: float, since: int = 0
    ) -> tuple[T, object, int]:
        """The first item from number `since` on for which `predicate` is truthy, with the
        predicate's value and the number of the item after it; raises FeedClosed."""
        deadline = time.monotonic() + timeout
        index = since
        with self._changed:
            while True:
                while index < len(self._items):
                    item = self._items[index]
                    index += 1
                    found = predicate(item)
                    if found:
                        return item, found, index
                if self._closed:
                    raise FeedClosed("the process exited")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FeedClosed(f"nothing matched within {timeout} s")
                self._changed.wait(remaining)
