"""The ``cluster`` section of config/callserver.yaml: one node of several behind a SIP edge.

cluster:
  node: node-a                  # this node's name, unique in the cluster (default: host name)
  redis: redis://127.0.0.1:6379/0      # shared limits, registrations, services (none: in-process)
  postgres: postgresql://callserver@127.0.0.1:5432/callserver   # the central CDR store
  lease: 15                     # seconds a node's channels count without its heartbeat
  edge:
    addresses: [192.0.2.10]     # the Kamailio edge's source addresses (IP, or IP:PORT)
    only: true                  # take SIP only from the edge (not from anyone who can reach us)
    source_header: X-Callserver-Source   # where the edge puts the caller's address

Without ``redis`` and ``postgres`` (the default) the node is the embedded single process:
in-process counters and registrations, CDRs in SQLite. docs/scaling.md describes the
topology, what is shared and what each node keeps.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import cached_property
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = ["ClusterSettings", "EdgeSettings"]

_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


def _default_node() -> str:
    """The host name, cut to a node name's characters."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).lstrip("-_.")
    return name[:64] or "node"


def _edge_address_text(address: str) -> str:
    _edge_address(address)
    return address


def _edge_address(address: str) -> tuple[str, int | None]:
    """``(ip, port)`` of an edge address: ``IP``, ``IPv4:PORT`` or ``[IPv6]:PORT``.

    A port names the one source port the edge sends from (several edges on one host, or an
    edge beside its callers on one address, as on a test machine's loopback)."""
    host, port = address, None
    if address.startswith("[") and "]:" in address:
        host, _, text = address[1:].partition("]:")
        port = _port(address, text)
    elif address.count(":") == 1:
        host, _, text = address.partition(":")
        port = _port(address, text)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ValueError(
            f"{address!r} is not an IP address (192.0.2.10, 192.0.2.10:5060, [2001:db8::1]:5060)"
        ) from None


def _port(address: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{address!r}: the port is a number from 1 to 65535")
    return int(text)


class EdgeSettings(BaseModel):
    """The SIP edge (Kamailio) in front of the nodes.

    A request from one of ``addresses`` is the edge's: the caller's own address is the value
    of ``source_header`` (``host:port``), which the edge sets after removing any the caller
    sent, so trunks are identified, rate-limited and locked out by the caller's address.
    ``only`` refuses (drops, counted) every request that did not come through the edge.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    addresses: list[Annotated[str, AfterValidator(_edge_address_text)]] = Field(
        default_factory=list
    )
    only: bool = False
    source_header: str = "X-Callserver-Source"

    @cached_property
    def sources(self) -> frozenset[tuple[str, int | None]]:
        """The edge's addresses as ``(ip, port)`` pairs, the IP in its canonical text (as a
        socket gives it); ``port`` None for an address without one (any port)."""
        return frozenset(_edge_address(address) for address in self.addresses)

    @field_validator("source_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.fullmatch(value):
            raise ValueError(f"{value!r} is not a header name (letters, digits, '-')")
        return value

    @model_validator(mode="after")
    def _only_with_addresses(self) -> Self:
        if self.only and not self.addresses:
            raise ValueError(
                "only: true takes SIP from the edge alone: list the edge's addresses "
                "(addresses: [192.0.2.10])"
            )
        return self


class ClusterSettings(BaseModel):
    """This node's place in a cluster; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node: str = Field(default_factory=_default_node)
    redis: str | None = None
    postgres: str | None = None
    lease: float = Field(15.0, gt=0, le=3600)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)

    @field_validator("node")
    @classmethod
    def _node(cls, value: str) -> str:
        if not _NODE.fullmatch(value):
            raise ValueError(f"{value!r}: a node name is letters, digits, '_', '.', '-'")
        return value

    @field_validator("redis")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        return _url(value, ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")

    @field_validator("postgres")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        return _url(value, ("postgresql", "postgres"), "postgresql://user@127.0.0.1:5432/db")

    @property
    def heartbeat(self) -> float:
        """Seconds between this node's lease renewals: a third of the lease."""
        return self.lease / 3


def _url(value: str | None, schemes: tuple[str, ...], example: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ValueError(f"{value!r} is not a {schemes[0]} URL ({example})")
    return value
