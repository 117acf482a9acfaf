import numpy as np
import pytest

from hepablate.core.cache import ByteBudgetCache, array_nbytes


def _arr(nbytes: int) -> np.ndarray:
    return np.zeros(nbytes, dtype=np.uint8)


def test_array_nbytes_finds_nested_arrays():
    a, b = _arr(10), _arr(7)
    assert array_nbytes(a) == 10
    assert array_nbytes((a, None, 3.0, {"x": 1.0})) == 10
    assert array_nbytes((a, [b, (b,)], {"k": a})) == 10 + 7 + 7 + 10
    assert array_nbytes("text") == 0 and array_nbytes(None) == 0


def test_least_recently_used_dropped_first_by_bytes():
    c: ByteBudgetCache[str, np.ndarray] = ByteBudgetCache(max_bytes=30)
    for k in "abc":
        assert c.put(k, _arr(10))
    assert len(c) == 3 and c.nbytes == 30
    assert c.get("a") is not None  # a is now the most recently used: b goes first
    c.put("d", _arr(10))
    assert c.keys() == ["c", "a", "d"]
    assert "b" not in c and c.nbytes == 30
    c.put("e", _arr(25))  # needs the room of c, a and d
    assert c.keys() == ["e"] and c.nbytes == 25


def test_byte_budget_respected_and_oversized_entry_not_stored():
    c: ByteBudgetCache[int, tuple] = ByteBudgetCache(max_bytes=100)
    rng = np.random.default_rng(0)
    for k in range(200):
        c.put(k, (_arr(int(rng.integers(1, 60))), 1.0))
        assert c.nbytes <= 100
        assert c.nbytes == sum(array_nbytes(c.get(j)) for j in c.keys())
    c.clear()
    c.put("small", (_arr(40),))
    assert not c.put("huge", (_arr(101),))
    assert "huge" not in c and c.keys() == ["small"] and c.nbytes == 40
    assert c.put("exact", (_arr(100),))  # exactly the budget fits, alone
    assert c.keys() == ["exact"]


def test_replacing_an_entry_updates_its_size():
    c: ByteBudgetCache[str, np.ndarray] = ByteBudgetCache(max_bytes=50)
    c.put("a", _arr(20))
    c.put("b", _arr(20))
    c.put("a", _arr(5))
    assert c.nbytes == 25 and c.keys() == ["b", "a"]
    assert not c.put("a", _arr(60))  # too large: the old entry is gone as well
    assert "a" not in c and c.nbytes == 20


def test_entry_budget_and_custom_size():
    c: ByteBudgetCache[int, str] = ByteBudgetCache(max_entries=2)
    c.put(1, "x")
    c.put(2, "y")
    c.get(1)
    c.put(3, "z")
    assert c.keys() == [1, 3]
    sized: ByteBudgetCache[str, str] = ByteBudgetCache(max_bytes=5, size=len)
    sized.put("a", "abc")
    sized.put("b", "de")
    assert sized.nbytes == 5
    sized.put("c", "f")
    assert sized.keys() == ["b", "c"]
    none: ByteBudgetCache[int, int] = ByteBudgetCache(max_entries=0)
    assert not none.put(1, 1) and len(none) == 0


def test_unbounded_by_default():
    c: ByteBudgetCache[int, np.ndarray] = ByteBudgetCache()
    for k in range(1000):
        c.put(k, _arr(1000))
    assert len(c) == 1000


def test_hit_and_miss_counters():
    c: ByteBudgetCache[str, int] = ByteBudgetCache(max_entries=1)
    assert c.get("a") is None and c.get("a", 7) == 7
    c.put("a", 1)
    assert c.get("a") == 1
    assert "a" in c and "b" not in c  # membership is not counted
    c.put("b", 2)
    assert c.get("a") is None and c.get("b") == 2
    assert (c.hits, c.misses) == (2, 3)


def test_bad_budgets():
    with pytest.raises(ValueError):
        ByteBudgetCache(max_bytes=-1)
    with pytest.raises(ValueError):
        ByteBudgetCache(max_entries=-1)


def test_pop_removes_an_entry_and_its_bytes():
    import numpy as np

    from hepablate.core.cache import ByteBudgetCache

    c: ByteBudgetCache[str, np.ndarray] = ByteBudgetCache(max_bytes=1000)
    c.put("a", np.zeros(10, np.uint8))
    c.put("b", np.zeros(20, np.uint8))
    assert c.pop("a") is not None and "a" not in c and c.nbytes == 20
    assert c.pop("a") is None and len(c) == 1
