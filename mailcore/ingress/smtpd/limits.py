"""What one client may cost the submission service: connections (global and per client IP) and
failed AUTH attempts (per IP and per user, across connections and listeners).

Both are kept in memory, per process: a restart forgets them, and each `invoke serve` process
counts on its own. `service.py` shares one `ConnectionLimits` and one `AuthGuard` between every
SMTP listener of a process, so the caps hold for the process, not per port.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Awaitable, Callable


@dataclass
class ConnectionLimits:
    """Open connections, counted per client IP. `admit` says which reply refuses a new one, or None."""

    max_connections: int = 1000
    max_connections_per_ip: int = 50
    _total: int = 0
    _per_ip: Counter = field(default_factory=Counter)

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip`; the REPLIES row refusing it (nothing counted) or None."""
        if self._total >= self.max_connections:
            return "too-many-connections"
        if self._per_ip[ip] >= self.max_connections_per_ip:
            return "too-many-connections-ip"
        self._total += 1
        self._per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self._total -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]

    @property
    def total(self) -> int:
        return self._total


@dataclass
class AuthGuard:
    """Failed AUTH attempts per client IP and per user name, decaying with a half-life.

    Up to `free_failures` failures cost nothing; each further one waits `delay_seconds`, doubling
    up to `max_delay_seconds`, before the 535 goes out; from `ip_lockout` failures of an IP, or
    `user_lockout` failures of one user name (higher: anyone may fail as anyone), AUTH is refused
    with 454 without checking the password. Scores halve every `half_life_seconds`, so a locked
    client gets back in after a quiet while. A success clears that user's score (not the IP's).
    Unknown and known user names are scored alike: the guard tells nothing about which exist."""

    free_failures: int = 3
    delay_seconds: float = 1.0
    max_delay_seconds: float = 8.0
    ip_lockout: int = 10
    user_lockout: int = 20
    half_life_seconds: float = 300.0
    max_entries: int = 100_000
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _scores: dict = field(default_factory=dict)  # ("ip"|"user", key) -> (score, at)

    def _score(self, key: tuple[str, str], now: float) -> float:
        entry = self._scores.get(key)
        if entry is None:
            return 0.0
        score, at = entry
        return score * 0.5 ** (max(0.0, now - at) / self.half_life_seconds)

    @staticmethod
    def _keys(ip: str, user: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("ip", ip), ("user", user.strip().lower()[:320])

    def locked(self, ip: str, user: str) -> bool:
        now = self.clock()
        ip_key, user_key = self._keys(ip, user)
        return self._score(ip_key, now) >= self.ip_lockout or self._score(user_key, now) >= self.user_lockout

    def failed(self, ip: str, user: str) -> float:
        """Count a failure; the delay (seconds) to wait before answering it."""
        now = self.clock()
        if len(self._scores) >= self.max_entries:
            self._sweep(now)
        scores = []
        for key in self._keys(ip, user):
            score = self._score(key, now) + 1
            self._scores[key] = (score, now)
            scores.append(score)
        over = max(scores) - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.delay_seconds * 2 ** (over - 1), self.max_delay_seconds)

    def succeeded(self, ip: str, user: str) -> None:
        self._scores.pop(self._keys(ip, user)[1], None)

    def _sweep(self, now: float) -> None:
        """Forget scores that have decayed below one failure; if that frees nothing, the oldest half."""
        self._scores = {k: v for k, v in self._scores.items() if self._score(k, now) >= 1}
        if len(self._scores) >= self.max_entries:
            keep = sorted(self._scores.items(), key=lambda kv: kv[1][1])[len(self._scores) // 2:]
            self._scores = dict(keep)
