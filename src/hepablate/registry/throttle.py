"""Login throttling: bounded lockout per username and per client address.

Each failed login counts against its username and its client (IP address) within a sliding
window. From `free_failures` failures on, the key is locked for a delay that doubles with
every further failure, up to `max_lockout_s`; a successful login clears the username's
count (not the client's). While locked, logins are refused at once with HTTP 429 and a
`Retry-After`, whether or not the username exists, so the refusal tells nothing about which
accounts exist. Memory is bounded: at most `max_keys` keys per kind are kept (the oldest
are dropped). State is per process (`hepablate serve --workers N` multiplies the attempts
an attacker gets by N, still bounded).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Entry:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failures per (kind, key); `retry_after` says how long a key is locked."""

    def __init__(
        self,
        *,
        free_failures_user: int = 5,
        free_failures_client: int = 20,
        window_s: float = 900.0,
        base_lockout_s: float = 1.0,
        max_lockout_s: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = {"user": free_failures_user, "client": free_failures_client}
        self.window_s = window_s
        self.base_lockout_s = base_lockout_s
        self.max_lockout_s = max_lockout_s
        self.max_keys = max_keys
        self.clock = clock
        self._entries: dict[str, OrderedDict[str, _Entry]] = {
            "user": OrderedDict(),
            "client": OrderedDict(),
        }
        self._lock = threading.Lock()

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until a login for `username` from `client` is allowed (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [
                e.locked_until - now
                for kind, key in (("user", username), ("client", client))
                if (e := self._entries[kind].get(key)) is not None
            ]
        return max([0.0, *waits])

    def failure(self, username: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for kind, key in (("user", username), ("client", client)):
                entries = self._entries[kind]
                e = entries.pop(key, None) or _Entry()
                e.failures = [t for t in e.failures if now - t < self.window_s] + [now]
                over = len(e.failures) - self.free[kind]
                if over >= 0:
                    delay = min(self.base_lockout_s * 2.0**over, self.max_lockout_s)
                    e.locked_until = max(e.locked_until, now + delay)
                entries[key] = e
                while len(entries) > self.max_keys:
                    entries.popitem(last=False)

    def success(self, username: str) -> None:
        with self._lock:
            self._entries["user"].pop(username, None)
