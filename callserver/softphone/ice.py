"""ICE for the softphone: host candidates on one configured address, remote ones it can reach.

aioice (0.13) gathers a host candidate on every address of every interface but loopback and
has no option naming the addresses to use. The softphone gathers on exactly one,
``admin.softphone.address``: ``host_candidates_on`` sets it for the current context (the task
that sets the local description, and the tasks it starts), and aioice's module function
``get_host_addresses`` is replaced once (``install``) by one that returns that address when
one is set and aioice's own answer otherwise. Nothing else in the process uses aioice.

The browser's offer may list candidates the server cannot reach or should not try: with a
loopback address only loopback candidates are kept (a test never leaves 127.0.0.1), and
mDNS names (``*.local``, RFC 8445 §5.1.1.1 / draft-ietf-mmusic-mdns-ice-candidates) are
dropped everywhere, as resolving them takes multicast. No STUN or TURN server is configured:
the agents' browsers reach the server's address directly (RFC 8445 host candidates).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import aioice.ice
from aiortc import RTCConfiguration

__all__ = ["host_candidates_on", "install", "reachable_candidates", "rtc_configuration"]

_address: ContextVar[str | None] = ContextVar("softphone_ice_address", default=None)
_aioice_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    address = _address.get()
    if address is None:
        return _aioice_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [address]


def install() -> None:
    """Make aioice gather on the address ``host_candidates_on`` sets (idempotent)."""
    aioice.ice.get_host_addresses = _host_addresses


@contextmanager
def host_candidates_on(address: str) -> Iterator[None]:
    """Within the block (and tasks started in it) host candidates are gathered on ``address``
    only."""
    install()
    token = _address.set(address)
    try:
        yield
    finally:
        _address.reset(token)


def rtc_configuration() -> RTCConfiguration:
    """No STUN or TURN servers (aiortc's default asks a public STUN server)."""
    return RTCConfiguration(iceServers=[])


def reachable_candidates(sdp: str, address: str) -> str:
    """``sdp`` without the ``a=candidate`` lines the server on ``address`` does not try: mDNS
    names, and with a loopback ``address`` every non-loopback one."""
    loopback = ipaddress.ip_address(address).is_loopback
    kept = [line for line in sdp.splitlines() if _usable(line, loopback)]
    return "\r\n".join(kept) + "\r\n"


def _usable(line: str, loopback: bool) -> bool:
    if not line.startswith("a=candidate:"):
        return True
    fields = line.split()
    if len(fields) < 8:
        return False
    host = fields[4]
    if host.endswith(".local"):
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or not loopback
