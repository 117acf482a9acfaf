"""Optimistic locking: concurrent edits of one record raise a conflict, never overwrite."""

from __future__ import annotations

import threading

import pytest
from registry_helpers import patient

from hepablate.registry.auth import Actor
from hepablate.registry.service import Conflict, Registry


def test_stale_version_conflicts(engine) -> None:  # type: ignore[no-untyped-def]
    alice = Registry(engine, Actor("alice", "clinician", "north"))
    bob = Registry(engine, Actor("bob", "clinician", "north"))
    p = alice.create("patients", patient())
    seen_a = alice.get("patients", p["id"])
    seen_b = bob.get("patients", p["id"])
    alice.update("patients", p["id"], {"ecog": 1}, seen_a["version"])
    with pytest.raises(Conflict, match="version 2, not 1"):
        bob.update("patients", p["id"], {"ecog": 3}, seen_b["version"])
    with pytest.raises(Conflict):
        bob.delete("patients", p["id"], seen_b["version"])
    now = alice.get("patients", p["id"])
    assert now["ecog"] == 1 and now["version"] == 2 and now["deleted_at"] is None


def test_parallel_updates_exactly_one_wins(engine) -> None:  # type: ignore[no-untyped-def]
    reg = Registry(engine, Actor("a", "clinician", "north"))
    p = reg.create("patients", patient())
    results: list[str] = []

    def edit(ecog: int) -> None:
        try:
            Registry(engine, Actor(f"u{ecog}", "clinician", "north")).update(
                "patients", p["id"], {"ecog": ecog}, 1
            )
            results.append(f"ok{ecog}")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=edit, args=(i % 5,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("ok")]
    assert len(results) == 6 and len(winners) == 1
    final = reg.get("patients", p["id"])
    assert final["version"] == 2 and f"ok{final['ecog']}" == winners[0]
    from hepablate.registry.audit import verify

    assert verify(engine).ok and verify(engine).rows_checked == 2


def test_delete_with_live_children_conflicts(reg) -> None:  # type: ignore[no-untyped-def]
    from registry_helpers import session

    p = reg.create("patients", patient())
    s = reg.create("procedure_sessions", session(p["id"]))
    with pytest.raises(Conflict, match="live procedure_sessions"):
        reg.delete("patients", p["id"], 1)
    reg.delete("procedure_sessions", s["id"], 1)
    assert reg.delete("patients", p["id"], 1)["deleted_at"] is not None
