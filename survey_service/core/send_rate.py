"""Send-rate limits shared by every worker: one global rate and per-recipient-domain rates.

The operator sets them for their provider (SEND_RATE_LIMIT=14/s for an SES sandbox, per-domain rates
for receivers that throttle). Each rate is a GCRA bucket in Redis (one Lua script checks every bucket
a send needs and takes from all of them or from none), so N workers together stay within it. Sends
are spaced evenly (one send per interval: no bursts, which providers count against you).
Instants come from the caller, so a test can count
what a limiter lets through at chosen times without waiting.
"""

from __future__ import annotations

from redis import Redis

KEY_PREFIX = "survey:send-rate:"

# KEYS: the buckets; ARGV[1]: now (ms); then per bucket its interval (ms). Returns 0 (taken from every
# bucket) or the ms to wait before the first bucket allows a send (nothing taken).
_GCRA = """
local now = tonumber(ARGV[1])
local wait = 0
local next_tat = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  if tat > now then wait = math.max(wait, tat - now) end
  next_tat[i] = tat + interval
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, next_tat[i], 'PX', math.ceil(next_tat[i] - now) + 60000)
end
return 0
"""


class SendRateLimiter:
    """Whether a send to a domain may go now under the global and per-domain rates (shared via Redis).

    Rates are sends per second (config.py parses SEND_RATE_LIMIT and friends); None means no limit.
    """

    def __init__(
        self,
        redis: Redis,
        global_rate: float | None = None,
        domain_rate: float | None = None,
        domain_rates: dict[str, float] | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.redis = redis
        self.global_rate, self.domain_rate = global_rate, domain_rate
        self.domain_rates = domain_rates or {}
        self.prefix = prefix
        self._script = redis.register_script(_GCRA)

    @property
    def limited(self) -> bool:
        """False when no rate is configured (then reserve() never asks Redis)."""
        return bool(self.global_rate or self.domain_rate or self.domain_rates)

    def _buckets(self, domain: str) -> list[tuple[str, float]]:
        buckets = [(f"{self.prefix}all", self.global_rate)] if self.global_rate else []
        rate = self.domain_rates.get(domain, self.domain_rate)
        if rate is not None:
            buckets.append((f"{self.prefix}domain:{domain}", rate))
        return buckets

    def reserve(self, domain: str, now: float) -> float:
        """At `now` (seconds): 0.0 when one send to `domain` may go (and is counted), else seconds to wait."""
        buckets = self._buckets(domain.lower())
        if not buckets:
            return 0.0
        keys = [key for key, _ in buckets]
        args = [int(now * 1000), *(1000.0 / rate for _, rate in buckets)]
        wait_ms = float(self._script(keys=keys, args=args))
        return wait_ms / 1000.0
