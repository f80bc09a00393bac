"""SDP session descriptions: parse and serialise (RFC 4566).

Theory of operation
-------------------
``parse_sdp`` turns a body into a frozen :class:`SessionDescription`; ``str()`` turns it back,
CRLF-terminated, in the RFC 4566 §5 line order. Everything parsed is kept (attributes in order,
``b=``, ``i=``/``u=``/``e=``/``p=``/``r=``/``z=``/``k=`` lines), so ``parse_sdp(str(sdp)) == sdp``.
Parsing tolerates what real offers carry: LF-only line ends, trailing white space, blank lines,
unknown attributes, ``b=`` lines, several ``t=`` lines. Anything else malformed raises
:class:`SdpError` with a sentence naming the line. A ``c=`` address is kept as text; its address
type is written back as ``IP6`` when the address holds a colon and ``IP4`` otherwise.

The offer/answer rules (RFC 3264) that use these values live in :mod:`callserver.sip.offer_answer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "DIRECTIONS",
    "Attribute",
    "MediaDescription",
    "Origin",
    "SdpError",
    "SessionDescription",
    "direction_attribute",
    "parse_sdp",
]

Attribute = tuple[str, str | None]
"""One ``a=`` line: ``(name, value)``; value is None for a property attribute (``a=sendonly``)."""

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
"""The RFC 4566 §6 direction attributes."""
_RTPMAP = re.compile(r"(\d+)\s+([^/\s]+)/(\d+)(?:/(\d+))?")
_FMTP = re.compile(r"(\d+)\s+(.*)")
_PTIME = re.compile(r"(\d{1,5})(?:\.\d*)?")
# Extra line types, split by where RFC 4566 §5 places them around the c=, b= and t= lines.
_SESSION_HEAD, _SESSION_TAIL, _MEDIA_HEAD, _MEDIA_TAIL = "iuep", "rzk", "i", "k"


class SdpError(ValueError):
    """A session description is malformed, or an offer/answer exchange cannot complete."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """The ``o=`` line (RFC 4566 §5.2); ``sess_version`` grows with each new offer."""

    username: str
    sess_id: int
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One media description, from its ``m=`` line to the next (RFC 4566 §5.14).

    ``connection`` is the media-level ``c=`` address (None: the session-level one applies).
    ``bandwidth`` holds ``b=`` lines as ``(bwtype, kbps)``; ``extra`` holds ``i=``/``k=`` lines.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: tuple[Attribute, ...] = ()
    bandwidth: tuple[tuple[str, int], ...] = ()
    port_count: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def rtpmaps(self) -> dict[int, tuple[str, int, int]]:
        """``a=rtpmap`` as ``{PT: (encoding, clock rate, channels)}`` (RFC 4566 §6)."""
        out: dict[int, tuple[str, int, int]] = {}
        for value in self._values("rtpmap"):
            if match := _RTPMAP.fullmatch(value):
                pt, name, rate, channels = match.groups()
                out[int(pt)] = (name, int(rate), int(channels or 1))
        return out

    @property
    def fmtp(self) -> dict[int, str]:
        """``a=fmtp`` as ``{PT: format parameters}`` (RFC 4566 §6)."""
        matches = (_FMTP.fullmatch(value) for value in self._values("fmtp"))
        return {int(m.group(1)): m.group(2) for m in matches if m}

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds, or None when absent or unreadable (RFC 4566 §6)."""
        match = next((_PTIME.fullmatch(v) for v in self._values("ptime")), None)
        return (int(match.group(1)) or None) if match else None

    @property
    def direction(self) -> str:
        """The media-level direction attribute, ``sendrecv`` by default (RFC 4566 §6)."""
        return direction_attribute(self.attributes) or "sendrecv"

    @property
    def rtcp_mux(self) -> bool:
        """True when ``a=rtcp-mux`` is present (RFC 5761 §5.1.1)."""
        return any(name == "rtcp-mux" for name, _ in self.attributes)

    def _values(self, name: str) -> list[str]:
        return [v.strip() for n, v in self.attributes if n == name and v is not None]

    def _lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        lines = [f"m={' '.join([self.media, str(port), self.proto, *self.formats])}"]
        lines += _extra(self.extra, _MEDIA_HEAD)
        if self.connection is not None:
            lines.append(_c_line(self.connection))
        lines += [f"b={kind}:{kbps}" for kind, kbps in self.bandwidth]
        return lines + _extra(self.extra, _MEDIA_TAIL) + _a_lines(self.attributes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole session description (RFC 4566 §5); ``str()`` gives its CRLF-terminated text.

    ``timing`` holds each ``t=`` line as ``(start, stop)``; ``extra`` holds the ``i=``, ``u=``,
    ``e=``, ``p=``, ``r=``, ``z=`` and ``k=`` lines as ``(type, value)``, in order.
    """

    origin: Origin
    session_name: str = "-"
    connection: str | None = None
    timing: tuple[tuple[int, int], ...] = ((0, 0),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    bandwidth: tuple[tuple[str, int], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    version: int = 0

    def __str__(self) -> str:
        o = self.origin
        lines = [
            f"v={self.version}",
            f"o={o.username} {o.sess_id} {o.sess_version} {o.nettype} {o.addrtype} {o.address}",
            f"s={self.session_name}",
        ]
        lines += _extra(self.extra, _SESSION_HEAD)
        if self.connection is not None:
            lines.append(_c_line(self.connection))
        lines += [f"b={kind}:{kbps}" for kind, kbps in self.bandwidth]
        lines += [f"t={start} {stop}" for start, stop in self.timing]
        lines += _extra(self.extra, _SESSION_TAIL) + _a_lines(self.attributes)
        for media in self.media:
            lines += media._lines()
        return "".join(f"{line}\r\n" for line in lines)

    def direction_of(self, media: MediaDescription) -> str:
        """Return ``media``'s direction: its own attribute, else the session's, else sendrecv.

        See RFC 4566 §6: a session-level direction applies to every media description that
        does not carry its own.
        """
        return (
            direction_attribute(media.attributes)
            or direction_attribute(self.attributes)
            or "sendrecv"
        )

    def connection_of(self, media: MediaDescription) -> str | None:
        """Return the ``c=`` address that applies to ``media`` (its own, else the session's).

        See RFC 4566 §5.7.
        """
        return media.connection if media.connection is not None else self.connection

    def to_bytes(self) -> bytes:
        """Return the UTF-8 body for a SIP message (RFC 4566 §5: CRLF line ends)."""
        return str(self).encode()


def _extra(extra: tuple[tuple[str, str], ...], kinds: str) -> list[str]:
    return [f"{kind}={value}" for kind, value in extra if kind in kinds]


def _a_lines(attributes: tuple[Attribute, ...]) -> list[str]:
    return [f"a={name}" if value is None else f"a={name}:{value}" for name, value in attributes]


def _c_line(address: str) -> str:
    return f"c=IN {_addrtype(address)} {address}"


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def direction_attribute(attributes: tuple[Attribute, ...]) -> str | None:
    """Return the last direction attribute among ``attributes``, or None (RFC 4566 §6)."""
    found = [name for name, _ in attributes if name in DIRECTIONS]
    return found[-1] if found else None


def _number(text: str, what: str, line: int, top: int | None = None) -> int:
    if not (text.isascii() and text.isdigit()) or (top is not None and int(text) > top):
        bound = "" if top is None else f" from 0 to {top}"
        raise SdpError(f"line {line}: {what} {text!r} is not a number{bound}")
    return int(text)


# ---------------------------------------------------------------------------------- parsing

_SESSION_KINDS, _MEDIA_KINDS = "vosiuepcbtrzka", "icbka"


@dataclass(slots=True)
class _Section:
    """The session part, or one media description, while its lines are being read."""

    kinds: str
    connection: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    bandwidth: list[tuple[str, int]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    timing: list[tuple[int, int]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    origin: Origin | None = None
    name: str = "-"


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description (RFC 4566 §5).

    Args:
        data: the message body, bytes (UTF-8, RFC 4566 §5) or text.

    Returns:
        The frozen description; ``str()`` of it parses back to an equal value.

    Raises:
        SdpError: with a sentence naming the line, when the text is not SDP: no ``v=`` first,
            a bad ``o=``/``c=``/``m=``/``t=``/``b=`` line, an m= line without any ``c=``.
    """
    lines = _split_lines(data)
    if not lines or not lines[0][1].startswith("v="):
        raise SdpError("SDP must start with a v= line (RFC 4566 §5)")
    session = _Section(_SESSION_KINDS)
    medias: list[tuple[int, MediaDescription, _Section]] = []
    for number, line in lines:
        if line[0] == "m":
            medias.append((number, _parse_m(line[2:], number), _Section(_MEDIA_KINDS)))
        else:
            _parse_line(medias[-1][2] if medias else session, line[0], line[2:], number)
    if session.origin is None:
        raise SdpError("SDP has no o= line (RFC 4566 §5.2)")
    return SessionDescription(
        origin=session.origin,
        session_name=session.name,
        connection=session.connection,
        timing=tuple(session.timing),
        attributes=tuple(session.attributes),
        media=tuple(_finish_media(n, m, s, session.connection) for n, m, s in medias),
        bandwidth=tuple(session.bandwidth),
        extra=tuple(session.extra),
    )


def _split_lines(data: bytes | str) -> list[tuple[int, str]]:
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError as exc:
            raise SdpError("SDP body is not valid UTF-8 (RFC 4566 §5)") from exc
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split("\n"), start=1):
        line = raw.rstrip()
        if not line:
            continue
        if line[1:2] != "=" or not "a" <= line[0] <= "z":
            raise SdpError(f"line {number}: {line[:40]!r} is not a '<type>=<value>' line")
        out.append((number, line))
    return out


def _parse_line(section: _Section, kind: str, value: str, number: int) -> None:
    if kind not in section.kinds:
        level = "session" if section.kinds == _SESSION_KINDS else "media"
        raise SdpError(f"line {number}: unexpected {kind}= line at {level} level")
    if kind in "vosc" and kind in section.seen:
        raise SdpError(f"line {number}: more than one {kind}= line at the same level")
    section.seen.add(kind)
    if kind == "a":
        name, colon, rest = value.partition(":")
        section.attributes.append((name, rest if colon else None))
    elif kind == "b":
        section.bandwidth.append(_parse_b(value, number))
    elif kind == "c":
        section.connection = _parse_c(value, number)
    elif kind == "t":
        section.timing.append(_parse_t(value, number))
    elif kind == "o":
        section.origin = _parse_o(value, number)
    elif kind == "s":
        section.name = value
    elif kind == "v" and value != "0":
        raise SdpError(f"line {number}: SDP version {value!r} is not 0 (RFC 4566 §5.1)")
    elif kind != "v":
        section.extra.append((kind, value))


def _parse_o(value: str, number: int) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"line {number}: o= needs 6 fields (RFC 4566 §5.2), got {value!r}")
    user, sess_id, sess_version, nettype, addrtype, address = parts
    return Origin(
        username=user,
        sess_id=_number(sess_id, "o= sess-id", number),
        sess_version=_number(sess_version, "o= sess-version", number),
        nettype=nettype,
        addrtype=addrtype,
        address=address,
    )


def _parse_c(value: str, number: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"line {number}: c= must be 'IN IP4|IP6 <address>', got {value!r}")
    return parts[2]


def _parse_t(value: str, number: int) -> tuple[int, int]:
    parts = value.split()
    if len(parts) != 2:
        raise SdpError(f"line {number}: t= needs '<start> <stop>' (RFC 4566 §5.9)")
    return _number(parts[0], "t= start", number), _number(parts[1], "t= stop", number)


def _parse_b(value: str, number: int) -> tuple[str, int]:
    kind, _, kbps = value.partition(":")
    if not kind:
        raise SdpError(f"line {number}: b= needs '<bwtype>:<bandwidth>' (RFC 4566 §5.8)")
    return kind, _number(kbps, "b= bandwidth", number)


def _parse_m(value: str, number: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"line {number}: m= needs '<media> <port> <proto> <fmt> ...'")
    port, slash, count = parts[1].partition("/")
    return MediaDescription(
        media=parts[0],
        port=_number(port, "m= port", number, 65535),
        proto=parts[2],
        formats=tuple(parts[3:]),
        port_count=_number(count, "m= port count", number) if slash else None,
    )


def _finish_media(
    number: int, media: MediaDescription, section: _Section, session_connection: str | None
) -> MediaDescription:
    if section.connection is None and session_connection is None:
        raise SdpError(
            f"line {number}: m={media.media} has no c= line and the session has none "
            "either (RFC 4566 §5.7)"
        )
    return MediaDescription(
        media=media.media,
        port=media.port,
        proto=media.proto,
        formats=media.formats,
        port_count=media.port_count,
        connection=section.connection,
        attributes=tuple(section.attributes),
        bandwidth=tuple(section.bandwidth),
        extra=tuple(section.extra),
    )
