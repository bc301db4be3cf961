"""In-memory limits: events per key in a sliding window."""

from __future__ import annotations

import math
import time
from collections import deque


class FloodGuard:
    """Counts events per key in a sliding window, in memory (a chat's messages, a code's PINs)."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._events: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] > self.window:
            events.popleft()
        return events

    def blocked(self, key: str) -> bool:
        """Whether the key has used up its events for now (nothing is counted)."""
        return len(self._recent(key, time.monotonic())) >= self.limit

    def record(self, key: str) -> None:
        """Count one event (e.g. one wrong PIN)."""
        now = time.monotonic()
        self._recent(key, now).append(now)

    def check(self, key: str) -> tuple[bool, bool]:
        """Count an event if allowed: (allowed, warn), warn for the first refusal of a window."""
        now = time.monotonic()
        events = self._recent(key, now)
        if len(events) < self.limit:
            events.append(now)
            return True, False
        warned_at = self._warned.get(key)
        if warned_at is not None and now - warned_at < self.window:
            return False, False
        self._warned[key] = now
        return False, True

    def retry_after(self, key: str) -> int:
        """Seconds until the oldest counted event leaves the window."""
        events = self._events.get(key)
        if not events:
            return 1
        return max(1, math.ceil(self.window - (time.monotonic() - events[0])))

    def prune(self) -> None:
        """Forget chats that have been quiet for a whole window."""
        now = time.monotonic()
        for key in [k for k, ev in self._events.items() if not ev or now - ev[-1] > self.window]:
            del self._events[key]
            self._warned.pop(key, None)
