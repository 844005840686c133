"""In-memory sliding-window rate limits, per gateway replica.

Each replica counts on its own, so N replicas let through up to N times a limit: these limits shed
floods and slow down scripted guessing at the edge. The cross-replica guard against password
guessing is auth's database-backed throttling (docs/auth.md, "Sign-in throttling").

The algorithm is the sliding-window counter: two fixed windows per key, the previous one weighted by
how much of it still overlaps the sliding window. O(1) time and two integers of memory per key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from mif_gateway.config import GatewaySettings


class SlidingWindowLimiter:
    """At most `limit` hits per `window` seconds per key (approximately, never more)."""

    def __init__(
        self, limit: int, window: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        # key → [window index, hits in the previous window, hits in the current window]
        self._state: dict[str, list[int]] = {}
        self._last_sweep = clock()

    def hit(self, key: str) -> float | None:
        """Count one hit; None when allowed, else the seconds to wait (the hit is not counted)."""
        state, into = self._current(key)
        previous, current = state[1], state[2]
        if previous * (1 - into / self.window) + current + 1 <= self.limit:
            state[2] = current + 1
            return None
        return self._retry_after(previous, current, into)

    def wait(self, key: str) -> float | None:
        """What `hit` would answer, without counting: for limits on outcomes (failed sign-ins), checked
        before the attempt and counted after it, with `count`."""
        state = self._state.get(key)
        if state is None:
            return None
        state, into = self._current(key)
        previous, current = state[1], state[2]
        if previous * (1 - into / self.window) + current + 1 <= self.limit:
            return None
        return self._retry_after(previous, current, into)

    def count(self, key: str) -> None:
        """Count one hit whatever the limit (an outcome that has happened)."""
        state, _ = self._current(key)
        state[2] += 1

    def _current(self, key: str) -> tuple[list[int], float]:
        """The key's counters rolled to the current window, and how far into it we are."""
        now = self._clock()
        index = int(now // self.window)
        state = self._state.get(key)
        if state is None:
            if len(self._state) >= self.max_keys or now - self._last_sweep > self.window:
                self._sweep(index, now)
            state = self._state[key] = [index, 0, 0]
        elif state[0] != index:
            state[1] = state[2] if state[0] == index - 1 else 0
            state[2] = 0
            state[0] = index
        return state, now - index * self.window

    def _retry_after(self, previous: int, current: int, into: float) -> float:
        room = self.limit - 1
        if current <= room and previous:
            # Wait until the previous window's weight has decayed enough.
            needed = (1 - (room - current) / previous) * self.window
            return max(needed - into, 0.001)
        # Wait for the next window, where this window's hits become the decaying part.
        wait = self.window - into
        if current:
            wait += max(0.0, 1 - room / current) * self.window
        return wait

    def _sweep(self, index: int, now: float) -> None:
        self._last_sweep = now
        stale = [k for k, s in self._state.items() if s[0] < index - 1]
        for key in stale:
            del self._state[key]
        if len(self._state) >= self.max_keys:
            # Still full of live keys (a flood of distinct keys): forget the oldest half.
            for key in list(self._state)[: len(self._state) // 2]:
                del self._state[key]

    def __len__(self) -> int:
        return len(self._state)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


@dataclass(slots=True)
class RateLimits:
    """The gateway's limiters: general (per user / per anonymous IP) and sign-in. Sign-in limits count
    failures (per address, and per account from one address), so that a shift signing in from behind one
    factory NAT is never refused while guessing one account or spraying many from one address is; every
    attempt of an address also counts against a much higher ceiling, which bounds the hashing work one
    address can cause. The per-account limit is keyed by (account, address): failures from elsewhere
    never refuse the account's owner (guessing from many addresses is slowed down by auth)."""

    user: SlidingWindowLimiter
    anonymous: SlidingWindowLimiter
    login_ip: SlidingWindowLimiter  # failed sign-ins per address
    login_account: SlidingWindowLimiter  # failed sign-ins per (account, address)
    login_attempts_ip: SlidingWindowLimiter  # every sign-in attempt per address
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimits:
        keys = settings.rate_max_keys
        return cls(
            user=SlidingWindowLimiter(settings.rate_user_per_window, settings.rate_window_seconds, max_keys=keys),
            anonymous=SlidingWindowLimiter(
                settings.rate_anonymous_per_window, settings.rate_window_seconds, max_keys=keys
            ),
            login_ip=SlidingWindowLimiter(settings.login_per_ip, settings.login_window_seconds, max_keys=keys),
            login_account=SlidingWindowLimiter(
                settings.login_per_account, settings.login_window_seconds, max_keys=keys
            ),
            login_attempts_ip=SlidingWindowLimiter(
                settings.login_attempts_per_ip, settings.login_window_seconds, max_keys=keys
            ),
            enabled=settings.rate_limit_enabled,
        )
