"""Per-tenant token buckets: a sustained rate with a burst above it (pure, clock injected)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Buckets per key; each key's rate and burst are given by `limits` (default: the
    limiter's own)."""

    def __init__(
        self, rate: float, burst: int, limits: dict[str, tuple[float, int]] | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.limits = limits or {}
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """0 if the request may pass, else the seconds to wait before retrying."""
        rate, burst = self.limits.get(key, (self.rate, self.burst))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / rate
