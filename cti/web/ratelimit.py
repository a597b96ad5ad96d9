"""Login throttling: failures counted per (username, client address) and per address. Pure (``now`` given).

A key that reached its limit inside the window is refused until its oldest failure ages out;
a successful login clears the (username, address) key. In memory: a restart forgets. Several cti
nodes (bus on Redis) use cti.cluster.security.RedisLoginLimiter instead: counts shared by all nodes.
"""

from __future__ import annotations

from collections import deque


class LoginLimiter:
    def __init__(self, per_user: int = 5, per_address: int = 30, window_s: float = 300.0,
                 max_keys: int = 100_000) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window_s = window_s
        self.max_keys = max_keys
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
            return None
        return q

    def retry_after(self, username: str, address: str, now: float) -> float:
        """0 when a login attempt may proceed, else the seconds to wait."""
        wait = 0.0
        for key, limit in (((username.lower(), address), self.per_user), (("", address), self.per_address)):
            q = self._recent(key, now)
            if q is not None and len(q) >= limit:
                wait = max(wait, q[0] + self.window_s - now)
        return wait

    def failed(self, username: str, address: str, now: float) -> None:
        if len(self._fails) >= self.max_keys:  # a flood of random usernames: forget the oldest keys
            for key in list(self._fails)[: self.max_keys // 10]:
                del self._fails[key]
        for key in ((username.lower(), address), ("", address)):
            self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, address: str) -> None:
        self._fails.pop((username.lower(), address), None)
