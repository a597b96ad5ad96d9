"""Login throttling: failures counted per (username, client address) and per address. Pure (``now`` given).

An attempt is counted on its (username, address) key *when it starts* (:meth:`LoginLimiter.begin`),
before the password check: parallel attempts cannot all pass the check-then-count gap. A key that
holds ``per_user`` attempts inside the window is refused until its oldest ages out; a successful
login clears it. The per-address count never refuses a login (one NAT or proxy can hide a whole
floor: a correct password of a user who is not locked always gets in); it is reported
(:meth:`address_failures`) and the password checks of one address run one at a time
(:mod:`cti.web.loginguard`). In memory: a restart forgets. Several cti nodes (bus on Redis) use
cti.cluster.security.RedisLoginLimiter instead: counts shared by all nodes.
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

    def _add(self, key: tuple[str, str], now: float) -> None:
        if key not in self._fails and len(self._fails) >= self.max_keys:  # a flood of random usernames
            for old in list(self._fails)[: self.max_keys // 10]:
                del self._fails[old]
        self._fails.setdefault(key, deque()).append(now)

    def retry_after(self, username: str, address: str, now: float) -> float:
        """0 when the (username, address) key is not locked, else the seconds to wait. Counts nothing."""
        q = self._recent((username.lower(), address), now)
        return q[0] + self.window_s - now if q is not None and len(q) >= self.per_user else 0.0

    def begin(self, username: str, address: str, now: float) -> float:
        """Admit an attempt and count it at once (0), or the seconds to wait when the key is locked."""
        wait = self.retry_after(username, address, now)
        if wait <= 0:
            self._add((username.lower(), address), now)
        return wait

    def failed(self, username: str, address: str, now: float) -> None:
        """The admitted attempt was wrong: it stays counted on its key; the address counts it too."""
        self._add(("", address), now)

    def succeeded(self, username: str, address: str) -> None:
        self._fails.pop((username.lower(), address), None)

    def address_failures(self, address: str, now: float) -> int:
        q = self._recent(("", address), now)
        return len(q) if q is not None else 0
