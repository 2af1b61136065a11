"""The bounded LRU map of candidate-search results."""

from __future__ import annotations

import pickle

from medcode_nlp.kb.search_cache import SearchCache, clear_all


def test_least_recently_used_entries_go_first() -> None:
    cache = SearchCache(size=2)
    cache.put_many({"a": [1], "b": [2]})
    assert cache.get_many(["a"]) == [[1]]  # "a" is now the most recent
    cache.put_many({"c": [3]})
    assert cache.get_many(["a", "b", "c"]) == [[1], None, [3]]


def test_clear_all_and_pickling_start_cold() -> None:
    cache = SearchCache(size=4)
    cache.put_many({"a": [1]})
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.size == 4
    clear_all()
    assert cache.get_many(["a"]) == [None]
