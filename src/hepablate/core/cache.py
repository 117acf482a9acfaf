"""One small least-recently-used cache with a byte budget or an entry budget.

The planners and engines remember expensive results (nonlinear pair solutions, unit bases,
needle path checks, layout fits, confirmed cycles); each cache is a `ByteBudgetCache` with
its own budget. Entries are dropped least recently used first; an entry larger than the whole
byte budget is not stored.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def array_nbytes(value: object) -> int:
    """Summed `nbytes` of the numpy arrays found in `value`: the value itself, or the items of
    (nested) tuples, lists, sets and dict values. Other objects count 0."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list | set | frozenset):
        return sum(array_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(array_nbytes(v) for v in value.values())
    return 0


class ByteBudgetCache(Generic[K, V]):
    """Least-recently-used cache within `max_bytes` (sizes from `size`, by default the
    arrays' bytes: `array_nbytes`) and/or `max_entries`; `None` means no such limit.

    `get` counts hits and misses and makes a hit the most recently used entry; `put` stores
    (or replaces) an entry as the most recently used and drops the least recently used ones
    until both budgets hold. A value larger than `max_bytes` on its own is not stored."""

    def __init__(
        self,
        max_bytes: int | None = None,
        max_entries: int | None = None,
        size: Callable[[V], int] = array_nbytes,
    ) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        if max_entries is not None and max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._size = size
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value stored under `key` (now the most recently used), else `default`."""
        item = self._data.get(key)
        if item is None:
            self.misses += 1
            return default
        self._data.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: K, value: V) -> bool:
        """Store `value` under `key`; False (and nothing stored) if it alone exceeds the byte
        budget."""
        size = int(self._size(value)) if self.max_bytes is not None else 0
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if self.max_bytes is not None and size > self.max_bytes:
            return False
        if self.max_entries == 0:
            return False
        self._data[key] = (value, size)
        self._bytes += size
        while (self.max_bytes is not None and self._bytes > self.max_bytes) or (
            self.max_entries is not None and len(self._data) > self.max_entries
        ):
            _, (_, s) = self._data.popitem(last=False)
            self._bytes -= s
        return True

    def pop(self, key: K) -> V | None:
        """Remove `key` (e.g. a revoked token); its value, or None if it was not stored."""
        item = self._data.pop(key, None)
        if item is None:
            return None
        self._bytes -= item[1]
        return item[0]

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        self._data.clear()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held, by the size function (0 without a byte budget)."""
        return self._bytes

    def keys(self) -> list[K]:
        """Keys, least recently used first."""
        return list(self._data)

    def __contains__(self, key: object) -> bool:
        """Whether `key` is stored (neither counted nor made most recently used)."""
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return (
            f"ByteBudgetCache({len(self)} entries, {self._bytes} bytes; "
            f"max_bytes={self.max_bytes}, max_entries={self.max_entries}; "
            f"{self.hits} hits, {self.misses} misses)"
        )
