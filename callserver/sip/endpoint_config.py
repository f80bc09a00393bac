"""What an endpoint knows about itself: address, identity, timers, limits (RFC 3261 §8.1.1).

``EndpointConfig`` is the operator's part; ``HeaderFields`` the header field values every
response of a kind carries, formatted once per config (Allow, Supported, Accept, Contact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callserver.sip.parser import ParseLimits
from callserver.sip.timers import SipTimers
from callserver.sip.validate import UasPolicy

__all__ = ["EndpointConfig", "HeaderFields"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """What the endpoint needs to know about itself: address, identity, timers, limits."""

    host: str
    port: int
    user_agent: str = "callserver"
    timers: SipTimers = field(default_factory=SipTimers)
    limits: ParseLimits = field(default_factory=ParseLimits)
    policy: UasPolicy = field(default_factory=UasPolicy)
    session_expires: int = 1800
    min_se: int = 90

    def via(self, transport: str, branch: str) -> str:
        """Our Via value for a new client transaction, asking for rport (RFC 3581 §3)."""
        return f"SIP/2.0/{transport.upper()} {self.sent_by()};branch={branch};rport"

    def sent_by(self) -> str:
        """host:port as written in Via and Contact (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def contact(self, transport: str) -> str:
        """Our Contact value (RFC 3261 §8.1.1.8), naming the transport for streams."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:callserver@{self.sent_by()}{suffix}>"


@dataclass(frozen=True, slots=True)
class HeaderFields:
    """Field values every response of a kind carries, formatted once per config."""

    allow: str
    supported: str
    accept: str
    contacts: dict[str, str]

    @classmethod
    def of(cls, config: EndpointConfig) -> HeaderFields:
        """Format the fields for ``config``."""
        policy = config.policy
        return cls(
            allow=", ".join(sorted(policy.allowed_methods)),
            supported=", ".join(sorted(policy.supported_extensions)),
            accept=", ".join(sorted(policy.accepted_types)),
            contacts={t: config.contact(t) for t in ("udp", "tcp", "tls")},
        )
