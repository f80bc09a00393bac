"""Message framing on stream transports: TCP and TLS (RFC 3261 §18.3, §7.5; RFC 5626 §4.4.1).

Theory of operation
-------------------
A stream carries messages back to back. :class:`ReceiveBuffer` collects octets with ``feed``
and cuts one message at a time with ``next_message``: the head ends at the first empty line
(CRLF CRLF) and the body is exactly Content-Length octets ("In the case of stream-oriented
transports such as TCP, the Content-Length header field indicates the size of the body. All
stream-oriented transports MUST use Content-Length", RFC 3261 §18.3); a missing one means 0.
The cut message then goes to ``parser.parse_message(..., datagram=False)``.

CRLFs before a start line are skipped (RFC 3261 §7.5). A double CRLF there is an RFC 5626
keep-alive ping: it is consumed and counted, and ``take_pings`` tells the endpoint how many
single-CRLF pongs to send.

Nothing is ever rescanned: the search for the empty line resumes where the last one stopped,
and once a head is complete its body length is remembered, so feeding a message one octet at
a time costs O(n), not O(n²). Past ``max_message_bytes`` (a head with no end, or a declared
body that would not fit) the buffer raises 413, like h11's ``max_incomplete_event_size``; a
framing error leaves the stream unusable and the connection should be closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callserver.sip.errors import SipParseError
from callserver.sip.grammar import LWS, is_digits

__all__ = ["ParseLimits", "ReceiveBuffer", "parse_content_length"]

_FOLD = re.compile(rb"[ \t]*\r\n[ \t]+")
_END_OF_HEAD = b"\r\n\r\n"
_PING = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Size limits applied to every incoming message (configuration, not module constants)."""

    max_message_bytes: int = 65535
    max_headers: int = 100
    max_header_line: int = 8192


def parse_content_length(values: list[str]) -> int | None:
    """Return the Content-Length from its field values, None if there is none (RFC 3261 §20.14).

    Repeated identical values are tolerated; differing ones cannot frame the message.

    Raises:
        SipParseError: (400) for a non-numeric, negative or conflicting value.
    """
    if not values:
        return None
    first = values[0].strip(LWS)
    for value in values:
        if value.strip(LWS) != first:
            raise SipParseError("conflicting Content-Length values", 400)
    if not is_digits(first) or len(first.lstrip("0")) > 10:
        raise SipParseError(f"invalid Content-Length {first!r}", 400)
    return int(first)


_DEFAULT_LIMITS = ParseLimits()


def _content_length(head: bytes) -> int:
    """Find Content-Length (or its compact form ``l``) in a complete head; 0 when absent."""
    if b"\r\n " in head or b"\r\n\t" in head:
        head = _FOLD.sub(b" ", head)
    values: list[str] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.rstrip(b" \t").lower() in (b"content-length", b"l"):
            values.append(value.decode("latin-1").strip(" \t"))
    length = parse_content_length(values)
    return 0 if length is None else length


class ReceiveBuffer:
    """Reassembles SIP messages from stream data (RFC 3261 §18.3)."""

    __slots__ = ("_buffer", "_limits", "_pending", "_pings", "_scan_from")

    def __init__(self, limits: ParseLimits = _DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._scan_from = 0  # where the search for the end of the head resumes
        self._pending: int | None = None  # total size of a message whose head is complete
        self._pings = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append octets received on the stream."""
        self._buffer += data

    def take_pings(self) -> int:
        """Return how many CRLFCRLF keep-alive pings arrived since the last call.

        The endpoint answers each with a single CRLF pong (RFC 5626 §4.4.1).
        """
        pings, self._pings = self._pings, 0
        return pings

    def next_message(self) -> bytes | None:
        """Cut the next complete message (head and Content-Length body) from the buffer.

        Returns:
            The message's octets, or None until more data arrives.

        Raises:
            SipParseError: 413 when a head grows past ``max_message_bytes`` without its empty
                line or a declared Content-Length would exceed it; 400 for an unusable
                Content-Length. Either way the stream cannot be re-synchronised.
        """
        if self._pending is None:
            self._skip_keepalives()
            self._pending = self._find_message_size()
            if self._pending is None:
                return None
        size = self._pending
        if len(self._buffer) < size:
            return None
        message = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._pending = None
        self._scan_from = 0
        return message

    def _skip_keepalives(self) -> None:
        """Drop CRLFs before a start line, counting each CRLFCRLF as a ping."""
        buffer = self._buffer
        skipped = 0
        while buffer.startswith(b"\r\n", skipped):
            if buffer.startswith(_PING, skipped):
                self._pings += 1
                skipped += 4
            elif len(buffer) - skipped < 4 and _PING.startswith(buffer[skipped:]):
                break  # could still become a ping: wait for the rest
            else:
                skipped += 2
        if skipped:
            del buffer[:skipped]
            self._scan_from = 0

    def _find_message_size(self) -> int | None:
        """Return head + body size once the head is complete, else None."""
        buffer = self._buffer
        limit = self._limits.max_message_bytes
        end = buffer.find(_END_OF_HEAD, self._scan_from)
        if end == -1:
            if len(buffer) > limit:
                raise SipParseError(f"message head longer than {limit} octets", 413)
            self._scan_from = max(0, len(buffer) - 3)
            return None
        head_size = end + 4
        body_size = _content_length(bytes(buffer[:end]))
        if head_size + body_size > limit:
            raise SipParseError(f"message of {head_size + body_size} octets over {limit}", 413)
        return head_size + body_size
