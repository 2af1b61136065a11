"""A bounded, thread-safe LRU map of candidate-search results (query -> hits).

Notes repeat their mentions ("hypertension", "chest pain"), and a mention is searched under
the same texts in every note: answering those from memory removes most of the sparse
products of a batch. The hits are immutable; the cache never changes a result.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

#: Queries kept per candidate index (about 1.5 KB each with 20 hits: 6 MB an index).
DEFAULT_SIZE = 4_096


_instances: weakref.WeakSet[SearchCache] = weakref.WeakSet()


def clear_all() -> None:
    """Empty every search cache of this process (for benchmarks of cold searches)."""
    for cache in list(_instances):
        cache.clear()


class SearchCache:
    """Least-recently-used map with a fixed number of entries."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        _instances.add(self)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def get_many(self, keys: Sequence[Hashable]) -> list[Any]:
        """The value of each key, or None where it is not cached."""
        with self._lock:
            found = []
            for key in keys:
                value = self._items.get(key)
                if value is not None:
                    self._items.move_to_end(key)
                found.append(value)
            return found

    def put_many(self, items: Mapping[Hashable, Any]) -> None:
        """Remember ``items``, forgetting the least recently used beyond the size."""
        if self.size <= 0:
            return
        with self._lock:
            self._items.update(items)
            for key in items:
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled empty (a lock cannot be pickled; a copy starts cold)."""
        return {"size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]
