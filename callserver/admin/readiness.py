"""``/readyz``: why the server is not ready for calls (an empty list: ready)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from callserver.calls.admission import Admission
from callserver.calls.manager import CallManager
from callserver.campaigns.runner import CampaignRunner
from callserver.cdr.ingester import CdrIngester
from callserver.cdr.spool import CdrSpool
from callserver.cluster.cdrs import CentralCdrStore
from callserver.config.centrex import Centrex
from callserver.config.settings import Settings
from callserver.dialplan.routing import Routing
from callserver.phone_services import PhoneServices
from callserver.transport.sockets import SipSockets

__all__ = ["ServerState", "not_ready"]


class ServerState(Protocol):
    """What readiness and the resources read of the running server."""

    settings: Settings
    sockets: SipSockets
    routing: Routing
    cdr: CdrSpool | None
    calls: CallManager
    admission: Admission  # the customers and their numbers in force
    ingester: CdrIngester
    central: CentralCdrStore | None  # cluster.postgres: the central CDR store
    phones: PhoneServices  # the call centre and its agents' desk, voicemail
    centrex: Centrex
    campaigns: CampaignRunner


async def not_ready(server: ServerState) -> list[str]:
    """The reasons: no SIP socket open, no dialplan loaded, the CDR spool directory missing or
    not writable (checked in a thread: it asks the file system), or draining to stop."""
    reasons = []
    if not server.sockets.describe():
        reasons.append("SIP is not listening: see the log's server.listening and sip errors")
    if len(server.routing.dialplans.plans) == 0:
        directory = server.settings.dialplans
        reasons.append(f"no dialplan is loaded from {directory}: callserver check {directory}")
    if server.cdr is None:
        reasons.append("the CDR spool is not open yet")
    elif not await asyncio.to_thread(_writable, server.cdr.directory):
        reasons.append(f"the CDR spool {server.cdr.directory} is not a writable directory")
    if server.calls.draining:
        reasons.append("the server is draining to stop")
    return reasons


def _writable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
