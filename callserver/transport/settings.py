"""Transport settings: the ``dns:`` section of config/callserver.yaml, the ``sip.listen`` addresses.

The nameservers that resolve host names in forward targets and outbound routes (RFC 3263),
how long one lookup may take, and how many answers are cached; the sockets SIP listens on.
Validated by pydantic like every other section.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DnsSettings", "ListenAddress", "parse_nameserver"]


def parse_nameserver(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` as (IP, port); port 53 when none is given.

    Raises:
        ValueError: not of that form.
    """
    rest = text.strip()
    host, port = rest, "53"
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":") if tail.startswith(":") else "53" if not tail else ""
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not port:
        raise ValueError(f"nameserver {text!r} is not IP, IP:PORT or [IPv6]:PORT")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"nameserver {text!r}: the port must be a number from 1 to 65535")
    return str(address), int(port)


class DnsSettings(BaseModel):
    """DNS for host names in forward targets and routes (RFC 3263 resolution)."""

    model_config = ConfigDict(extra="forbid")
    nameservers: list[str] = Field(default_factory=list, description="empty: /etc/resolv.conf")
    timeout: float = Field(2.0, gt=0, le=30, description="seconds one lookup may take")
    cache_size: int = Field(4096, ge=1, le=1_000_000, description="answers cached at most")

    @field_validator("nameservers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_nameserver(text)
        return value

    def addresses(self) -> list[tuple[str, int]]:
        """The nameservers as (IP, port) pairs."""
        return [parse_nameserver(text) for text in self.nameservers]


class ListenAddress(BaseModel):
    """One SIP listening socket: ``udp:0.0.0.0:5060``, ``tcp:[::]:5060``."""

    model_config = ConfigDict(frozen=True)
    transport: Literal["udp", "tcp"]
    host: str
    port: int = Field(ge=0, le=65535)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
