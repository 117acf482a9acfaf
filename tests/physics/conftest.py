"""Slow physics tests (grid convergence) run only with ``-m slow``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow verification study: run with -m slow")
    for item in items:
        if "tests/physics" in str(item.fspath) and "slow" in item.keywords:
            item.add_marker(skip)
