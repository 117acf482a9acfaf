"""schemathesis against the registry API (issue 14, item 2): no 5xx, every response as the
OpenAPI document declares it, refused requests change nothing. A small fixed-seed budget
in the fast suite; a larger one marked slow (run with `-s` to see the figures)."""

from __future__ import annotations

import pytest
from api_fuzz import run_api_fuzz
from registry_helpers import PASSWORD, make_users

from hepablate.registry import audit, db, synthetic


@pytest.fixture
def fuzz_url(url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FUZZ_PW", PASSWORD)
    make_users(db.connect(url))
    synthetic.generate(4, 3, url)
    return url


def _check(url: str, examples: int) -> None:
    stats = run_api_fuzz(url, examples)
    print(stats.summary())
    assert stats.requests > 0
    assert stats.server_errors == 0, stats.failures.most_common(5)
    assert stats.violations == 0, stats.failures.most_common(5)
    assert stats.changed_on_refusal == 0
    assert audit.verify(db.connect(url)).ok


def test_api_fuzz_small_budget(fuzz_url: str) -> None:
    _check(fuzz_url, examples=4)


@pytest.mark.slow
def test_api_fuzz_large_budget(fuzz_url: str) -> None:
    _check(fuzz_url, examples=100)
