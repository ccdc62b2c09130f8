"""Rate limits: token buckets per client (requests, look-ups) and per source address (failed authentication).

A bucket holds up to `burst` tokens and gains `rate` tokens a second; a request takes one, or waits
(429 with Retry-After: the seconds until a token is there). Buckets live in this process's memory: with
several gateway processes each enforces its own share.

Written here rather than taken from a library: the token-bucket packages on PyPI keep one rate for every
key and never forget a key (an unbounded map under a spray of source addresses), and none says how long
to wait; limits (moving windows) is no token bucket. What is needed is small: per-key rates read from
the live configuration, an exact Retry-After, and a bounded map that forgets the least recently seen key.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.model import ClientConf, RateLimitSettings


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: int


class Buckets:
    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when counted)

    def _tokens(self, key: str, rate: Rate, now: float) -> float:
        tokens, at = self._state.get(key, (float(rate.burst), now))
        return min(float(rate.burst), tokens + (now - at) * rate.per_second)

    def take(self, key: str, rate: Rate) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is (nothing is taken then)."""
        now = self.clock()
        tokens = self._tokens(key, rate, now)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate.per_second
        self._state[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return wait

    def wait(self, key: str, rate: Rate) -> float:
        """The seconds before a token is there (0.0: now), taking nothing."""
        tokens = self._tokens(key, rate, self.clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate.per_second


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


class RateLimits:
    """The gateway's limits: what each client may send, and how often an address may fail to authenticate."""

    def __init__(self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.requests = Buckets(clock=clock)
        self.lookups = Buckets(clock=clock)
        self.auth_failures = Buckets(clock=clock)
        self.citizens = Buckets(clock=clock)
        self.public_rate = Rate(settings.public_per_minute / 60, settings.public_burst)
        self.failure_rate = Rate(settings.auth_failures_per_minute / 60, settings.auth_failure_burst)

    def request_rate(self, conf: ClientConf) -> Rate:
        own = conf.rate_limit
        return Rate(own.requests_per_second or self.settings.requests_per_second, own.burst or self.settings.burst)

    def lookup_rate(self, conf: ClientConf) -> Rate:
        own = conf.rate_limit
        per_minute = own.lookups_per_minute or self.settings.lookups_per_minute
        return Rate(per_minute / 60, own.lookup_burst or self.settings.lookup_burst)

    def locked_out(self, address: str) -> float:
        """Seconds before `address` may try to authenticate again (0.0: now)."""
        return self.auth_failures.wait(address, self.failure_rate) if self.settings.enabled else 0.0

    def auth_failed(self, address: str) -> None:
        if self.settings.enabled:
            self.auth_failures.take(address, self.failure_rate)

    def request(self, client_id: str, conf: ClientConf) -> float:
        return self.requests.take(client_id, self.request_rate(conf)) if self.settings.enabled else 0.0

    def public(self, address: str) -> float:
        """A keyless request (guides, verification, public status) from `address`: 0.0, or seconds to wait."""
        return self.citizens.take(address, self.public_rate) if self.settings.enabled else 0.0

    def lookup(self, client_id: str, conf: ClientConf) -> float:
        return self.lookups.take(client_id, self.lookup_rate(conf)) if self.settings.enabled else 0.0
