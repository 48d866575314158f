"""A per-member command rate limit: a token bucket in Redis, shared by every bot process.

Each member has a bucket of ``COMMAND_BURST`` tokens that refills at ``COMMAND_RATE_PER_MINUTE``; every
command and button click takes one. The bucket lives in Redis (one hash per member, under the deployment's
key prefix) and is updated by one Lua script that reads the clock of Redis itself, so several bot
processes share one limit exactly and never disagree about time. This sits on top of the plan's limits
(jobs waiting and running, fast time), which only count jobs.

When Redis cannot be reached the limit is not applied (and a warning logged): a broken limiter must not
take the bot down; the broker being away already shows on every submit. A burst of commands waits for
one of :data:`CONNECTIONS` connections (redis-py's default pool refuses the 101st at once, which read as
"unreachable" and let the burst through unlimited).
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.errors import SlowDownError
from imagine.services import redis_client_url

__all__ = ["CONNECTIONS", "RateLimiter"]

log = logging.getLogger(__name__)

#: Connections to Redis the limiter opens at most; a command waits (up to 5 s) for a free one.
CONNECTIONS = 16

#: KEYS[1] the member's bucket; ARGV: capacity, tokens per second. Returns {allowed (0/1), seconds to wait}.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(wait)}
"""


class RateLimiter:
    """Token buckets per member in Redis. ``burst`` 0 turns the limit off."""

    def __init__(self, redis_url: str, *, prefix: str, burst: int, per_minute: float) -> None:
        self.burst, self.per_minute = burst, per_minute
        self.prefix = f"{prefix}imagine:ratelimit:"
        self._redis = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            redis_client_url(redis_url), max_connections=CONNECTIONS, timeout=5)) if burst > 0 else None
        self._take = self._redis.register_script(_TAKE) if self._redis is not None else None

    async def wait_s(self, user_id: int) -> float:
        """Take a token for ``user_id``: 0 when allowed now, else the seconds until one is back."""
        if self._take is None:
            return 0.0
        try:
            allowed, wait = await self._take(keys=[f"{self.prefix}{user_id}"],
                                             args=[self.burst, self.per_minute / 60.0])
        except RedisError:
            log.warning("rate limit not applied: Redis unreachable", exc_info=True)
            return 0.0
        return 0.0 if int(allowed) else float(wait)

    async def check(self, user_id: int) -> None:
        """Raise :class:`~domain.errors.SlowDownError` when ``user_id`` has no token left."""
        wait = await self.wait_s(user_id)
        if wait > 0:
            raise SlowDownError(wait)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
