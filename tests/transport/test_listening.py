"""Tests for listening: why a listen address could not be bound, in the system's words."""

from __future__ import annotations

import socket

from callserver.transport.listening import bind_failure
from callserver.transport.settings import ListenAddress


def test_a_bind_error_without_errno_is_named_by_binding_again() -> None:
    """uvloop's "could not bind" carries no errno: a second bind names "Address already in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        address = ListenAddress(transport="udp", host="127.0.0.1", port=port)
        error = OSError(f"could not bind to local_addr ('127.0.0.1', {port})")
        assert bind_failure(address, error) == "Address already in use"


def test_a_bind_error_with_its_reason_keeps_it() -> None:
    """asyncio's own error already says why; it is used as it is."""
    address = ListenAddress(transport="tcp", host="127.0.0.1", port=1)
    assert bind_failure(address, OSError(13, "Permission denied")) == "Permission denied"


def test_a_cause_gone_by_the_time_of_asking_leaves_the_first_words() -> None:
    """When the second bind succeeds the first error's own text is all there is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as finder:
        finder.bind(("127.0.0.1", 0))
        port = finder.getsockname()[1]
    address = ListenAddress(transport="udp", host="127.0.0.1", port=port)
    assert bind_failure(address, OSError("could not bind")) == "could not bind"
