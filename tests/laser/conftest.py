"""Skip `slow` tests unless they are selected with `-m slow`."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow study: run with -m slow")
    for item in items:
        if "slow" in item.keywords and str(item.fspath).find("/tests/laser/") >= 0:
            item.add_marker(skip)
