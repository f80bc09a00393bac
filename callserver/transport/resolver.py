"""RFC 3263 resolution over DNS: a SIP URI to the targets to try, in order (asyncio, dnspython).

Theory of operation
-------------------
``SipResolver.resolve(uri)`` follows RFC 3263 §4 with the rules of ``transport.locating``:
an IP literal is its own target; a host name with a port is looked up in A/AAAA; otherwise
NAPTR, then SRV (the NAPTR replacement, or ``_sip._udp``/``_sip._tcp``/``_sips._tcp`` of the
domain), then A/AAAA of each SRV target, or of the domain itself when it has no SRV records.
The result lists every address of every SRV target in RFC 2782 order, so a caller that gets
no answer or a 503 from one moves to the next (§4.3).

Lookups go through dnspython's asyncio resolver (never ``getaddrinfo``, which would block the
event loop), to the configured nameservers or the system's (/etc/resolv.conf). Answers,
negative ones included, are cached for their TTL (RFC 2308 for negative answers) in a
bounded ``TtlCache`` read with the injected clock. A timeout or a failing nameserver is not
cached and ends the resolution with ``ResolutionError``, whose message says what failed; so
does a URI that leads only to transports or address families this server cannot send on.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdtypes.IN.NAPTR
import dns.rdtypes.IN.SRV
import dns.resolver
import structlog

from callserver.sip.uri import SipUri
from callserver.transport.dnscache import TtlCache
from callserver.transport.locating import (
    NaptrRecord,
    SrvRecord,
    Target,
    Transport,
    default_port,
    default_transport,
    ip_literal,
    order_naptr,
    order_srv,
    srv_name,
)

__all__ = ["CachedAnswer", "ResolutionError", "ResolverStatistics", "SipResolver"]

_log = structlog.get_logger("callserver.transport")

_Record = NaptrRecord | SrvRecord | str  # str: an address of an A or AAAA record
# The URI's transport parameter and scheme to the transport; a sips: URI over TCP is TLS
# (RFC 3261 §26.2.2: sips "MUST" be TLS), and sips: over UDP does not exist.
_URI_TRANSPORTS: dict[tuple[str, bool], Transport] = {
    ("udp", False): "udp",
    ("tcp", False): "tcp",
    ("tls", False): "tls",
    ("tcp", True): "tls",
    ("tls", True): "tls",
}
_MAX_TTL = 86400.0  # a day: a longer TTL is kept this long (RFC 8767 §4 caps it at 7 days)


class ResolutionError(Exception):
    """A SIP URI led to no target; the message says why in one sentence."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolverStatistics:
    """Counters of one ``SipResolver`` (``cached`` is current)."""

    lookups: int
    cache_hits: int
    failures: int
    cached: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnswer:
    """A DNS answer the resolver holds: ``records`` of type ``kind`` at ``name`` as text
    (empty: a negative answer), kept ``expires_in`` seconds more."""

    name: str
    kind: str
    records: tuple[str, ...]
    expires_in: float

    def view(self) -> dict[str, object]:
        """As JSON: name, type, records, expires_in (whole seconds, rounded up)."""
        return {
            "name": self.name,
            "type": self.kind,
            "records": list(self.records),
            "expires_in": math.ceil(self.expires_in),
        }


class SipResolver:
    """Resolves SIP URIs to ``Target``s per RFC 3263 §4, caching DNS answers by their TTL."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        nameservers: Sequence[tuple[str, int]] = (),
        transports: Iterable[Transport] = ("udp", "tcp"),
        families: Iterable[int] = (4, 6),
        timeout: float = 2.0,
        cache_size: int = 4096,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        clock: monotonic seconds (the event loop's ``time``), for TTLs.
        nameservers: (IP, port) pairs to ask; empty: the system's (/etc/resolv.conf).
        transports: the transports this server sends on, in order of preference.
        families: 4 and/or 6, the address families this server sends on.
        timeout: seconds one lookup may take, all nameservers together.
        cache_size: answers kept at most.
        rng: the random source of the SRV weight order.
        """
        self.clock = clock
        self.nameservers = tuple(nameservers)
        self.transports: tuple[Transport, ...] = tuple(transports)
        self.families = frozenset(families)
        self.timeout = timeout
        self._rng = rng or random.Random()
        self._cache: TtlCache[tuple[str, str], tuple[_Record, ...]] = TtlCache(cache_size)
        self._dns: dns.asyncresolver.Resolver | None = None
        self._lookups = self._failures = 0

    async def resolve(self, uri: SipUri) -> tuple[Target, ...]:
        """The targets for a request to ``uri``, in the order to try them (RFC 3263 §4).

        The host is the ``maddr`` parameter if present, else the URI's host (§4).

        Raises:
            ResolutionError: no target: the name does not exist, has no usable records, DNS
                failed or timed out, or only transports or families we cannot send on remain.
        """
        secure = uri.scheme == "sips"
        host = (uri.param("maddr") or uri.host).lower()
        transport = self._explicit_transport(uri, secure)
        address = ip_literal(host)
        if address is not None:
            chosen = transport or self._supported(default_transport(secure))
            return (
                self._family_checked(
                    Target(transport=chosen, host=address, port=uri.port or default_port(chosen))
                ),
            )
        name = host.removesuffix(".")
        if uri.port is not None:  # §4.2: a port means A/AAAA only
            return await self._addresses(
                name, transport or self._supported(default_transport(secure)), uri.port
            )
        if transport is not None:  # §4.2: SRV of that transport, else A/AAAA
            return await self._via_srv(name, [(transport, srv_name(transport, name))])
        return await self._via_naptr(name, secure)

    def statistics(self) -> ResolverStatistics:
        """DNS lookups sent, answers served from the cache, failed lookups, entries cached."""
        cache = self._cache.statistics()
        return ResolverStatistics(
            lookups=self._lookups,
            cache_hits=cache.hits,
            failures=self._failures,
            cached=cache.entries,
        )

    def cached(self, host: str) -> list[CachedAnswer]:
        """The answers held now for ``host``: its own records, its SRV names' (RFC 3263 §4.1)
        and the A/AAAA of the targets they name; none for an IP address."""
        host = host.lower().removesuffix(".")
        held = self._cache.held(self.clock())
        names = {host}
        for (name, _), records, _ in held:
            if name == host or name.endswith(f".{host}"):
                names.add(name)
                names.update(_named(record) for record in records)
        return sorted(
            (
                CachedAnswer(
                    name=name,
                    kind=kind,
                    records=tuple(_text(record) for record in records),
                    expires_in=left,
                )
                for (name, kind), records, left in held
                if name in names
            ),
            key=lambda answer: (answer.name != host, answer.name, answer.kind),
        )

    # RFC 3263 §4.1 and §4.2 -----------------------------------------------------------------

    def _explicit_transport(self, uri: SipUri, secure: bool) -> Transport | None:
        value = uri.transport
        if value is None:
            return None
        transport = _URI_TRANSPORTS.get((value, secure))
        if transport is None:
            raise ResolutionError(f"{uri}: transport {value!r} is not one this server speaks")
        return self._supported(transport)

    def _supported(self, transport: Transport) -> Transport:
        if transport not in self.transports:
            offered = ", ".join(self.transports) or "none"
            raise ResolutionError(
                f"transport {transport} is needed, and this server listens on {offered}"
            )
        return transport

    async def _via_naptr(self, name: str, secure: bool) -> tuple[Target, ...]:
        naptr = await self._lookup(name, "NAPTR")
        chosen = order_naptr(
            (r for r in naptr if isinstance(r, NaptrRecord)),
            secure=secure,
            transports=self.transports,
        )
        if not chosen:  # §4.1: no NAPTR: the SRV of each transport, ours in our order
            candidates = [t for t in self.transports if (t == "tls") == secure]
            chosen = [(t, srv_name(t, name)) for t in candidates]
        if not chosen:
            self._supported(default_transport(secure))
        return await self._via_srv(name, chosen)

    async def _via_srv(self, name: str, chosen: list[tuple[Transport, str]]) -> tuple[Target, ...]:
        for transport, srv in chosen:
            records = [r for r in await self._lookup(srv, "SRV") if isinstance(r, SrvRecord)]
            if records:
                return await self._srv_targets(srv, transport, records)
        # §4.2: no SRV records: A/AAAA of the domain, the transport's default port.
        transport = chosen[0][0]
        return await self._addresses(name, transport, default_port(transport))

    async def _srv_targets(
        self, srv: str, transport: Transport, records: list[SrvRecord]
    ) -> tuple[Target, ...]:
        ordered = order_srv(records, self._rng)
        if not ordered:
            raise ResolutionError(f"{srv}: SRV says the service is not available there")
        found = await asyncio.gather(
            *(self._addresses(r.target, transport, r.port) for r in ordered),
            return_exceptions=True,
        )
        targets = [t for result in found if isinstance(result, tuple) for t in result]
        if targets:
            return tuple(targets)
        errors = [r for r in found if isinstance(r, BaseException)]
        if any(not isinstance(e, ResolutionError) for e in errors):
            raise next(e for e in errors if not isinstance(e, ResolutionError))
        raise ResolutionError(f"{srv}: no SRV target has an address: {errors[0]}")

    async def _addresses(self, name: str, transport: Transport, port: int) -> tuple[Target, ...]:
        kinds = [kind for family, kind in ((4, "A"), (6, "AAAA")) if family in self.families]
        answers = await asyncio.gather(*(self._lookup(name, kind) for kind in kinds))
        hosts = [r for answer in answers for r in answer if isinstance(r, str)]
        if not hosts:
            raise ResolutionError(f"{name} has no {' or '.join(kinds)} record")
        return tuple(Target(transport=transport, host=host, port=port) for host in hosts)

    def _family_checked(self, target: Target) -> Target:
        family = 6 if ":" in target.host else 4
        if family not in self.families:
            raise ResolutionError(f"{target.host}: this server does not send over IPv{family}")
        return target

    # DNS ------------------------------------------------------------------------------------

    async def _lookup(self, name: str, kind: str) -> tuple[_Record, ...]:
        """The records of type ``kind`` at ``name``, from the cache or DNS; () when none."""
        key = (name.lower(), kind)
        cached = self._cache.get(key, self.clock())
        if cached is not None:
            return cached
        self._lookups += 1
        try:
            records, ttl = await self._query(name, kind)
        except ResolutionError as exc:
            self._failures += 1
            _log.warning("dns.lookup_failed", name=name, type=kind, error=str(exc))
            raise
        self._cache.put(key, records, min(ttl, _MAX_TTL), self.clock())
        return records

    async def _query(self, name: str, kind: str) -> tuple[tuple[_Record, ...], float]:
        try:
            qname = dns.name.from_text(name)
            answer = await self._resolver().resolve(
                qname, kind, raise_on_no_answer=False, lifetime=self.timeout, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            return (), _negative_ttl(exc)
        except dns.resolver.LifetimeTimeout:
            raise ResolutionError(f"DNS {kind} {name}: no answer in {self.timeout:g} s") from None
        except dns.resolver.NoNameservers as exc:
            raise ResolutionError(f"DNS {kind} {name}: every nameserver failed ({exc})") from None
        except dns.exception.DNSException as exc:
            raise ResolutionError(f"DNS {kind} {name}: {exc}") from None
        ttl = float(answer.chaining_result.minimum_ttl)
        return tuple(_record(rdata) for rdata in answer.rrset or ()), ttl

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self._dns is None:
            if self.nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(host, port) for host, port in self.nameservers
                ]
            else:
                try:
                    resolver = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise ResolutionError(
                        "no system nameservers (/etc/resolv.conf): set dns.nameservers"
                    ) from None
            resolver.timeout = resolver.lifetime = self.timeout
            self._dns = resolver
        return self._dns


def _record(rdata: object) -> _Record:
    """dnspython's rdata as ours: addresses as text, NAPTR and SRV as frozen records."""
    if isinstance(rdata, dns.rdtypes.IN.NAPTR.NAPTR):
        return NaptrRecord(
            order=rdata.order,
            preference=rdata.preference,
            flags=rdata.flags.decode("ascii", "replace"),
            service=rdata.service.decode("ascii", "replace"),
            replacement=rdata.replacement.to_text(omit_final_dot=True),
        )
    if isinstance(rdata, dns.rdtypes.IN.SRV.SRV):
        return SrvRecord(
            priority=rdata.priority,
            weight=rdata.weight,
            port=rdata.port,
            target=rdata.target.to_text(omit_final_dot=True),
        )
    return str(getattr(rdata, "address", ""))


def _named(record: _Record) -> str:
    """The name a record leads to (an SRV target, a NAPTR replacement); an address: itself."""
    if isinstance(record, SrvRecord):
        return record.target.lower()
    if isinstance(record, NaptrRecord):
        return record.replacement.lower()
    return record


def _text(record: _Record) -> str:
    """A record as a zone file writes its data (RFC 1035 §5.1, RFC 2782, RFC 3403 §4.1)."""
    if isinstance(record, SrvRecord):
        return f"{record.priority} {record.weight} {record.port} {record.target}"
    if isinstance(record, NaptrRecord):
        r = record
        return f'{r.order} {r.preference} "{r.flags}" "{r.service}" "" {r.replacement}'
    return record


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> float:
    """How long an NXDOMAIN may be cached: the SOA's minimum (RFC 2308 §5), else dnspython's."""
    ttls = []
    responses: dict[object, dns.message.QueryMessage] = exc.responses()  # type: ignore[no-untyped-call]
    for response in responses.values():
        try:
            ttls.append(response.resolve_chaining().minimum_ttl)
        except dns.exception.DNSException:
            continue
    return float(min(ttls)) if ttls else 0.0
