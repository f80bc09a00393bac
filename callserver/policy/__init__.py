"""Policy: pure rules with time injected (docs/architecture.md, "Policy, limits and caps").

Channel limits per profile (``limits``) and call-rate limits per trunk and source (``cps``).
Nothing here does I/O or reads a clock: time comes in as ``now``, monotonic seconds.
"""

from __future__ import annotations

from callserver.policy.cps import (
    SOURCE_PREFIX,
    CallRateLimiter,
    RateRefusal,
    RateStatistics,
    TokenBucket,
)
from callserver.policy.limits import (
    ChannelLimits,
    Grant,
    LimitStatistics,
    OverLimitResponse,
    Refusal,
    profile_kind,
    refusal_headers,
)

__all__ = [
    "SOURCE_PREFIX",
    "CallRateLimiter",
    "ChannelLimits",
    "Grant",
    "LimitStatistics",
    "OverLimitResponse",
    "RateRefusal",
    "RateStatistics",
    "Refusal",
    "TokenBucket",
    "profile_kind",
    "refusal_headers",
]
