"""Milvus's quota and limit checks that more than one role needs, with Milvus's codes and messages.

The proxy (services/proxy/quota.py) enforces rates, request sizes and schema limits; the
coordinator enforces counts only it can see across proxies (databases, collections, partitions,
shards). Both read :class:`common.config.QuotaConfig` and raise the errors built here, so a client
sees the same code and text as from Milvus (pkg/util/merr, internal/rootcoord, internal/proxy).
The token bucket is Milvus's ``ratelimitutil.Limiter``: a request passes while the bucket is not in
debt, then takes its tokens (the bucket may go negative), so one large request is never refused
forever; the burst is one second's worth of tokens.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from common.config import QuotaConfig
from common.errors import Code, MilvusError

MB = 1024 * 1024
RATE_LIMIT_HINT = "request is rejected by grpc RateLimiter middleware, please retry later"
FORCE_DENY = "access has been disabled by the administrator"  # ratelimitutil.QuotaErrorString[ForceDeny]


def go_float(value: float) -> str:
    """``value`` as Go's ``%v`` prints a float64: shortest digits, ``e`` form when the exponent is < -4 or >= 6."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(float(value)))).normalize().as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    exponent = len(digits) + exp - 1  # of the first digit
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if exp >= 0:
        return sign + digits + "0" * exp
    point = len(digits) + exp
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"


# --- errors -------------------------------------------------------------------------------
def rate_limited(rate: float) -> MilvusError:
    """merr.WrapErrServiceRateLimit(rate, hint): code 8, retriable."""
    return MilvusError(Code.RATE_LIMIT, f"{RATE_LIMIT_HINT}: rate limit exceeded[rate={go_float(rate)}]")


def quota_exceeded(reason: str) -> MilvusError:
    """merr.WrapErrServiceQuotaExceeded(reason): code 9."""
    return MilvusError(Code.QUOTA_EXCEEDED, f"quota exceeded[reason={reason}]")


def too_large(message: str) -> MilvusError:
    """merr.WrapErrParameterTooLarge(message): code 1102."""
    return MilvusError(Code.PARAMETER_TOO_LARGE, f"parameter too large[message={message}]")


def check_database_count(quota: QuotaConfig, existing: int) -> None:
    if existing >= quota.max_database_num:
        raise MilvusError(
            Code.DATABASE_NUM_LIMIT, f"exceeded the limit number of database[limit={quota.max_database_num}]"
        )


def check_collection_count(quota: QuotaConfig, db_name: str, in_db: int, total: int) -> None:
    """rootcoord createCollectionTask: per-database limit first, then the cluster-wide one."""
    for count, limit in ((in_db, quota.max_collection_num_per_db), (total, quota.max_collection_num)):
        if count >= limit:
            raise MilvusError(
                Code.COLLECTION_NUM_LIMIT,
                f"exceeded the limit number of collections[dbName={db_name}][limit={limit}]",
            )


def check_partition_count(quota: QuotaConfig, existing: int, collection: str) -> None:
    if existing >= quota.max_partition_num:
        raise MilvusError(
            Code.PARAMETER_INVALID,
            f"partition number ({existing}) exceeds max configuration ({quota.max_partition_num}), "
            f"collection: {collection}",
        )


def check_shard_num(quota: QuotaConfig, shards: int) -> None:
    if shards > quota.max_shard_num:
        raise MilvusError(Code.PARAMETER_INVALID, f"maximum shards's number should be limited to {quota.max_shard_num}")


# --- the token bucket ---------------------------------------------------------------------
class TokenBucket:
    """Milvus's ratelimitutil.Limiter: ``rate`` tokens a second, burst = rate, debt allowed.

    ``rate`` < 0 means no limit; 0 refuses everything (Milvus then reports "quota exceeded").
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self._clock = clock
        self._tokens = self.rate  # a new limiter starts full (Milvus: zero "last" time)
        self._last = clock()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate < 0

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._advance()
            self.rate = float(rate)
            self._tokens = min(self._tokens, max(self.rate, 0.0))

    def _advance(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last)
        self._last = now
        if self.rate > 0:
            self._tokens = min(self.rate, self._tokens + elapsed * self.rate)

    def allow(self, n: float) -> bool:
        """Take ``n`` tokens if the bucket is not in debt; False (nothing taken) otherwise."""
        if self.rate < 0:
            return True
        with self._lock:
            if self.rate == 0:
                return False
            self._advance()
            if self._tokens < 0:
                return False
            self._tokens -= n
            return True

    def cancel(self, n: float) -> None:
        """Give back ``n`` tokens (a later limiter of the same request refused it)."""
        if self.rate <= 0:
            return
        with self._lock:
            self._tokens = min(self.rate, self._tokens + n)
