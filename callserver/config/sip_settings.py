"""The ``sip`` section of config/callserver.yaml and the addresses it names.

Listen addresses (``[udp:|tcp:]HOST:PORT``), the advertised address, the User-Agent, the
RFC 3261 §17 timers, the parser's limits, TCP connection limits and RFC 4028 session timers.
``settings.Settings`` holds it as ``sip``; ``check_host`` also checks the hosts of outbound
routes.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from callserver.transport.settings import ListenAddress

__all__ = ["SipSettings", "check_host", "parse_listen"]

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_host(host: str) -> str:
    """``host`` if it is an IP literal or a DNS name (RFC 1123 §2.1 labels), else ValueError."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is no IP address or host name")
    return host


def parse_listen(text: str) -> list[ListenAddress]:
    """Parse ``[udp:|tcp:]HOST:PORT``; without a transport prefix both UDP and TCP listen.

    An IPv6 host goes in brackets (``tcp:[::1]:5060``), as in a SIP URI (RFC 3261 §19.1.1).

    Raises:
        ValueError: the text is not of that form.
    """
    transports: list[Literal["udp", "tcp"]] = ["udp", "tcp"]
    rest = text.strip()
    prefix, sep, tail = rest.partition(":")
    if sep and prefix.lower() in ("udp", "tcp"):
        transports = ["udp"] if prefix.lower() == "udp" else ["tcp"]
        rest = tail
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {text!r} is not [udp:|tcp:]HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ipv6(host):
            raise ValueError(f"listen address {text!r}: only IPv6 addresses go in brackets")
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"listen address {text!r}: put an IPv6 host in brackets, [::1]:5060")
    if not host:
        raise ValueError(f"listen address {text!r} has no host")
    host = check_host(host)
    return [ListenAddress(transport=t, host=host, port=int(port)) for t in transports]


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


class SipSettings(BaseModel):
    """SIP signalling: sockets, identity, RFC 3261 timers, parser limits, session timers."""

    model_config = ConfigDict(extra="forbid")
    listen: list[ListenAddress] = Field(
        default_factory=lambda: parse_listen("udp:0.0.0.0:5060") + parse_listen("tcp:0.0.0.0:5060"),
        min_length=1,
    )
    advertised_address: str | None = None
    user_agent: str = "callserver"
    t1: float = Field(0.5, gt=0, le=10)
    t2: float = Field(4.0, gt=0, le=64, validate_default=True)  # checked against t1
    t4: float = Field(5.0, gt=0, le=64)
    max_message_bytes: int = Field(65535, ge=1024, le=1 << 20)
    max_headers: int = Field(100, ge=10, le=1000)
    max_header_line: int = Field(8192, ge=256, le=1 << 16)
    tcp_idle_timeout: float = Field(300.0, gt=0)
    tcp_max_connections: int = Field(1024, ge=1)
    session_expires: int = Field(1800, ge=90)
    min_se: int = Field(90, ge=90, validate_default=True)  # checked against session_expires

    @field_validator("listen", mode="before")
    @classmethod
    def _listen_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                out.extend(parse_listen(item) if isinstance(item, str) else [item])
            return out
        return value

    @field_validator("advertised_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("advertised_address must not be empty")
        return None if value is None else check_host(value.strip())

    @field_validator("t2")
    @classmethod
    def _t2_not_below_t1(cls, value: float, info: ValidationInfo) -> float:
        # RFC 3261 §17.1.2.2: T2 caps the retransmit interval that starts at T1.
        if value < info.data.get("t1", 0):
            raise ValueError("t2 must not be smaller than t1")
        return value

    @field_validator("min_se")
    @classmethod
    def _min_se_not_above_session_expires(cls, value: int, info: ValidationInfo) -> int:
        # RFC 4028 §4: the Session-Expires we ask for MUST NOT be below our Min-SE.
        if value > info.data.get("session_expires", value):
            raise ValueError("min_se must not exceed session_expires")
        return value
