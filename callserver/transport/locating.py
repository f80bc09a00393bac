"""Locating SIP servers: which DNS records to use and in which order (RFC 3263 §4, RFC 2782).

Theory of operation
-------------------
Pure rules, no I/O: ``transport.resolver`` asks DNS and these functions decide what its
answers mean. A client resolving a SIP URI picks a transport (§4.1), then an IP address and
port (§4.2):

* an IP literal needs no DNS; a host name with an explicit port needs only A/AAAA;
* the transport is the URI's ``transport`` parameter, else the most preferred NAPTR record
  with a SIP service this server speaks (``SIP+D2U``, ``SIP+D2T``, ``SIPS+D2T``), else the
  first transport with SRV records, else UDP for ``sip:`` and TLS for ``sips:``;
* SRV records are tried in RFC 2782 order: lowest priority first, and within one priority a
  weighted random order, so that traffic spreads over the targets in proportion to weight.

Records are small frozen values (``NaptrRecord``, ``SrvRecord``) that any DNS library's
answers are converted to, so the rules are tested without a network.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "NAPTR_SERVICES",
    "NaptrRecord",
    "SrvRecord",
    "Target",
    "Transport",
    "default_port",
    "default_transport",
    "ip_literal",
    "order_naptr",
    "order_srv",
    "srv_name",
]

Transport = Literal["udp", "tcp", "tls"]

# RFC 3263 §4.1: the NAPTR services of SIP and the transport each one names.
NAPTR_SERVICES: dict[str, Transport] = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
# RFC 3263 §4.1: "_sips._tcp" for TLS, "_sip._udp" and "_sip._tcp" otherwise.
_SRV_PREFIX: dict[Transport, str] = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NaptrRecord:
    """One NAPTR record (RFC 3403 §4.1), its text fields decoded."""

    order: int
    preference: int
    flags: str
    service: str
    replacement: str  # a domain name, without the final dot


@dataclass(frozen=True, slots=True, kw_only=True)
class SrvRecord:
    """One SRV record (RFC 2782); ``target`` is a host name without the final dot, or "."."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One place to send a request: a transport, an IP literal and a port (RFC 3263 §4)."""

    transport: Transport
    host: str
    port: int


def ip_literal(host: str) -> str | None:
    """``host`` as a plain IP address (IPv6 without brackets), or None for a host name."""
    try:
        return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def default_transport(secure: bool) -> Transport:
    """UDP for ``sip:``, TLS for ``sips:``, when nothing else chose (RFC 3263 §4.1)."""
    return "tls" if secure else "udp"


def default_port(transport: Transport) -> int:
    """5061 for TLS, 5060 otherwise (RFC 3261 §19.1.2)."""
    return 5061 if transport == "tls" else 5060


def srv_name(transport: Transport, domain: str) -> str:
    """The SRV name of ``transport`` at ``domain``: ``_sip._udp.example.com`` (RFC 3263 §4.1)."""
    return f"{_SRV_PREFIX[transport]}.{domain}"


def order_naptr(
    records: Iterable[NaptrRecord], *, secure: bool, transports: Iterable[Transport]
) -> list[tuple[Transport, str]]:
    """The usable NAPTR records as (transport, SRV name), most preferred first.

    See RFC 3263 §4.1: records whose services are not supported are discarded ("a client
    resolving a SIPS URI MUST discard any services that do not contain 'SIPS'"), the rest
    are taken in order, then preference (RFC 3403 §4.1). Only the "S" flag leads to SRV.

    Args:
        records: the NAPTR answer for the domain.
        secure: the URI is ``sips:``.
        transports: the transports this server can send on.
    """
    allowed = set(transports)
    usable: list[tuple[int, int, Transport, str]] = []
    for record in records:
        transport = NAPTR_SERVICES.get(record.service.upper())
        if transport is None or transport not in allowed or record.flags.lower() != "s":
            continue
        if secure and not record.service.upper().startswith("SIPS+"):
            continue
        usable.append((record.order, record.preference, transport, record.replacement))
    usable.sort(key=lambda item: (item[0], item[1]))
    return [(transport, name) for _, _, transport, name in usable]


def order_srv(records: Iterable[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    """SRV records in the order to try them (RFC 2782, "Usage rules").

    Lowest priority first. Within one priority: "arrange all SRV RRs (that have not been
    ordered yet) in any order, except that all those with weight 0 are placed at the
    beginning of the list", choose a uniform random number between 0 and the sum of the
    weights, and select the first record whose running sum is at least that number; repeat
    with the rest. A target of "." means the service is not available there: it is dropped.

    Args:
        records: the SRV answer.
        rng: the random source (a seeded one in tests).
    """
    by_priority: dict[int, list[SrvRecord]] = {}
    for record in records:
        if record.target not in (".", ""):
            by_priority.setdefault(record.priority, []).append(record)
    ordered: list[SrvRecord] = []
    for priority in sorted(by_priority):
        ordered += _weighted(by_priority[priority], rng)
    return ordered


def _weighted(records: list[SrvRecord], rng: random.Random) -> list[SrvRecord]:
    left = sorted(records, key=lambda record: record.weight != 0)  # weight 0 first, stable
    out: list[SrvRecord] = []
    while left:
        pick = rng.randint(0, sum(record.weight for record in left))
        running = 0
        for index, record in enumerate(left):
            running += record.weight
            if running >= pick:
                out.append(left.pop(index))
                break
    return out
