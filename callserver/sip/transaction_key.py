"""The keys transactions are matched by: client (RFC 3261 §17.1.3) and server (§17.2.3).

A client transaction is named by its top Via branch and method (``ClientKey``); a server
transaction by branch, sent-by and method when the branch carries the RFC 3261 magic cookie
(``ServerKey``), else by the RFC 2543 fields (``LegacyServerKey``). ``TransactionKey`` is any
of them: what the transaction layer, the UAS and UAC cores and their events pass around.
The functions that compute keys from messages live with the machines that use them
(``transaction_client.client_key_for_response``, ``transaction_server.server_key``).

The keys are named tuples, not dataclasses: every datagram looks its transaction up by key,
and a tuple's hash and equality run in C (a dataclass's are Python functions, about 900
bytecodes a call across these keys and ``dialog.DialogId``). The three kinds have different
lengths, so no key of one kind equals a key of another.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ClientKey", "LegacyServerKey", "ServerKey", "TransactionKey"]


class ClientKey(NamedTuple):
    """A client transaction's key: its top Via branch and method (RFC 3261 §17.1.3)."""

    branch: str
    method: str


class ServerKey(NamedTuple):
    """A server transaction's key for RFC 3261 branches: branch, sent-by, method (§17.2.3)."""

    branch: str
    host: str
    port: int | None
    method: str


class LegacyServerKey(NamedTuple):
    """The RFC 2543 key, for requests whose branch lacks the magic cookie (§17.2.3)."""

    request_uri: str
    to_tag: str
    from_tag: str
    call_id: str
    cseq: int
    top_via: str
    method: str


TransactionKey = ClientKey | ServerKey | LegacyServerKey
