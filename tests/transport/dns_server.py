"""A DNS server on 127.0.0.1 for tests: dnslib answering from zone-file text, queries counted."""

from __future__ import annotations

import textwrap
import threading
from collections import Counter
from collections.abc import Iterable
from types import TracebackType

from dnslib import QTYPE, RCODE, RR, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

HOST = "127.0.0.1"


class _Quiet:
    """A dnslib logger that logs nothing (the tests read ``ZoneServer.queries``)."""

    def __getattr__(self, name: str) -> object:
        return lambda *args: None


class _Zone(BaseResolver):  # type: ignore[misc]
    """Authoritative answers: NOERROR without answer for a known name and another type,
    NXDOMAIN for an unknown name, both with the SOA that sets their negative TTL."""

    def __init__(self, zone: str, silent: Iterable[str], negative_ttl: int) -> None:
        self.records = RR.fromZone(textwrap.dedent(zone))
        self.silent = {name.rstrip(".").lower() for name in silent}
        self.soa = RR.fromZone(
            f"test. {negative_ttl} IN SOA ns.test. hostmaster.test. 1 60 60 60 {negative_ttl}"
        )[0]
        self.queries: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.queries[(name, kind)] += 1
        if name in self.silent:
            raise DNSError("dropped: the test wants this name to time out")
        reply = request.reply()
        known = [rr for rr in self.records if str(rr.rname).rstrip(".").lower() == name]
        for rr in known:
            if QTYPE[rr.rtype] == kind:
                reply.add_answer(rr)
        if not reply.rr:
            reply.add_auth(self.soa)
            if not known:
                reply.header.rcode = RCODE.NXDOMAIN
        return reply


class ZoneServer:
    """``zone`` (zone-file text) served over UDP on a free port of 127.0.0.1.

    Names in ``silent`` get no reply at all, so lookups of them time out. Negative answers
    carry an SOA whose minimum is ``negative_ttl`` (RFC 2308).
    """

    def __init__(self, zone: str, *, silent: Iterable[str] = (), negative_ttl: int = 30) -> None:
        self._zone = _Zone(zone, silent, negative_ttl)
        self._server = DNSServer(self._zone, address=HOST, port=0, logger=_Quiet())
        self.port = int(self._server.server.server_address[1])

    def __enter__(self) -> ZoneServer:
        self._server.start_thread()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()
        self._server.server.server_close()

    @property
    def nameserver(self) -> tuple[str, int]:
        """The (IP, port) to give a resolver."""
        return (HOST, self.port)

    def count(self, name: str, kind: str) -> int:
        """How many queries for ``name`` (no final dot) of type ``kind`` arrived."""
        with self._zone.lock:
            return self._zone.queries[(name.lower(), kind)]

    def total(self) -> int:
        """How many queries arrived, of any name and type."""
        with self._zone.lock:
            return sum(self._zone.queries.values())
