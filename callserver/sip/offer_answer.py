"""SDP offer/answer for a call's audio stream (RFC 3264), over RFC 4566 descriptions.

Theory of operation
-------------------
The RFC 4566 model and parser live in :mod:`callserver.sip.sdp`; this module adds the
offer/answer rules over them.

UAS side, ``answer_offer`` (RFC 3264 §6): the answer has one m= line per offered m= line, in
order. The first ``audio`` stream on ``RTP/AVP`` with a non-zero port and a codec in common is
accepted with every offered codec we use, in the operator's order (static payload types 0 and 8
are known without an rtpmap, dynamic ones by their case-insensitive encoding name): the offerer
may send any format of the answer (RFC 3264 §6.1, §7), so the media engine decodes each of them,
and we send the first. ``telephone-event`` at the codec's clock rate is accepted too, with the
offerer's payload type and fmtp. Every other m= line is rejected: port 0, the offered format list.

UAC side, and a UAS asked for an offer (an INVITE or re-INVITE without a body, RFC 3261
§13.2.1, §14.2): ``build_offer`` writes our offer (RFC 3264 §5), ``negotiated_from_answer`` reads
the answer to it (RFC 3264 §6.1): we send its first audio format and take any of them. Both
sides end with a :class:`NegotiatedMedia` for the media engine.

Direction (RFC 3264 §6.1): the answer mirrors the offer, ``sendonly`` <-> ``recvonly``.
Hold: a connection address of ``0.0.0.0`` (RFC 2543 hold) means "neither RTP nor RTCP should be
sent to the peer" (RFC 3264 §8.4). We honour exactly that: the answer keeps receiving but drops
our sending half, so ``sendrecv`` is answered ``recvonly`` and ``recvonly`` becomes ``inactive``.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.sdp import (
    DIRECTIONS,
    Attribute,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
)

__all__ = [
    "Answer",
    "AnswerConfig",
    "Codec",
    "NegotiatedMedia",
    "NoCommonCodec",
    "answer_offer",
    "build_offer",
    "hold_answer_direction",
    "negotiated_from_answer",
]

# RFC 3551 §6 static payload types, known without an rtpmap: name -> (payload type, clock rate).
_STATIC: dict[str, tuple[int, int]] = {
    "PCMU": (0, 8000),
    "GSM": (3, 8000),
    "G723": (4, 8000),
    "PCMA": (8, 8000),
    "G722": (9, 8000),  # RFC 3551 §4.5.2: 8000 in SDP although it samples at 16 kHz
    "G729": (18, 8000),
}
_STATIC_BY_PT: dict[int, tuple[str, int]] = {pt: (n, rate) for n, (pt, rate) in _STATIC.items()}
_TELEPHONE_EVENT = "telephone-event"
_DEFAULT_PTIME = 20  # RFC 3551 §4.5: the default packetization interval for audio
_HOLD_ADDRESS = "0.0.0.0"
_REVERSED = {"sendonly": "recvonly", "recvonly": "sendonly"}
_WITHOUT_SEND = {"sendrecv": "recvonly", "sendonly": "inactive"}


class NoCommonCodec(SdpError):
    """No audio stream can be agreed on; a UAS answers 488 (RFC 3261 §13.3.1.1)."""


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format as negotiated: ``PCMA``, ``PCMU`` or ``telephone-event``."""

    name: str
    payload_type: int
    clock_rate: int = 8000


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerConfig:
    """What we offer or accept: codecs in the operator's order, our media address and port.

    ``session_id``/``session_version`` fill our ``o=`` line; the caller increments the version
    for each new offer or changed answer in a dialog (RFC 3264 §8).

    Raises:
        ValueError: for an empty, repeated or unknown codec name, a port outside 1..65535,
            a non-positive ptime or a negative session id or version.
    """

    codecs: tuple[str, ...] = ("PCMA", "PCMU")
    address: str
    port: int
    session_id: int
    session_version: int
    username: str = "callserver"
    ptime: int = 20

    def __post_init__(self) -> None:
        names = [name.upper() for name in self.codecs]
        unknown = [name for name in self.codecs if name.upper() not in _STATIC]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(f"codecs {self.codecs!r}: give each of {sorted(_STATIC)} at most once")
        if not 0 < self.port < 65536:
            raise ValueError(f"RTP port {self.port} is not in 1..65535")
        if self.ptime <= 0 or self.session_id < 0 or self.session_version < 0:
            raise ValueError("ptime must be positive and the session id and version not negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiatedMedia:
    """What the media engine needs for the agreed audio stream.

    ``codecs`` are the audio formats of the answer in its order: we send the first (``codec``)
    and the peer may send any of them (RFC 3264 §6.1, §7). ``direction`` is ours, as written in
    our answer (or implied by the peer's answer): ``sendonly`` means we send and do not expect
    RTP, ``recvonly`` the reverse.

    Raises:
        ValueError: when ``codecs`` is empty.
    """

    codecs: tuple[Codec, ...]
    telephone_event: Codec | None
    remote_address: str
    remote_port: int
    ptime: int
    direction: str
    rtcp_mux: bool

    def __post_init__(self) -> None:
        if not self.codecs:
            raise ValueError("negotiated media needs at least one audio codec")

    @property
    def codec(self) -> Codec:
        """The codec we send: the answer's first audio format (RFC 3264 §7)."""
        return self.codecs[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Our answer to an offer and the media it agrees on."""

    sdp: SessionDescription
    media: NegotiatedMedia


def hold_answer_direction(offered: str) -> str:
    """Return the direction an answer gives to a stream offered with ``offered``.

    ``sendonly`` -> ``recvonly``, ``recvonly`` -> ``sendonly``; ``sendrecv`` and ``inactive``
    are kept. See RFC 3264 §6.1 (and §8.4 for hold).

    Raises:
        SdpError: when ``offered`` is not one of the four direction attributes.
    """
    if offered not in DIRECTIONS:
        raise SdpError(f"{offered!r} is not an SDP direction attribute (RFC 4566 §6)")
    return _REVERSED.get(offered, offered)


def answer_offer(offer: SessionDescription, config: AnswerConfig) -> Answer:
    """Answer an offer, accepting one audio stream and rejecting every other m= line.

    The accepted stream lists every offered codec of ``config.codecs``, in that order, then
    ``telephone-event`` when offered at their clock rate.

    See RFC 3264 §6 and the theory of operation above.

    Args:
        offer: the peer's offer.
        config: our codecs (preference order), media address and port, ``o=`` values.

    Returns:
        The answer to send, with the media the engine should start.

    Raises:
        NoCommonCodec: when no RTP/AVP audio stream offers a codec of ``config.codecs``
            (the UAS answers 488 Not Acceptable Here).
        SdpError: when the accepted stream has no connection address.
    """
    index, codecs = _accepted_stream(offer, config)
    offered = offer.media[index]
    events = _telephone_event(_codecs(offered), codecs[0].clock_rate)
    remote = _remote_address(offer, offered)
    direction = _our_direction(offer.direction_of(offered), remote)
    ptime = offered.ptime or config.ptime
    accepted = _accepted_media(
        offered,
        [*codecs, *([events] if events else [])],
        config.port,
        [("ptime", str(ptime)), (direction, None)],
    )
    answer = SessionDescription(
        origin=_origin(config),
        connection=config.address,
        timing=offer.timing or ((0, 0),),  # RFC 3264 §6: "t=" MUST equal that of the offer
        media=tuple(accepted if i == index else _rejected(m) for i, m in enumerate(offer.media)),
    )
    negotiated = NegotiatedMedia(
        codecs=tuple(codecs),
        telephone_event=events,
        remote_address=remote,
        remote_port=offered.port,
        ptime=ptime,
        direction=direction,
        rtcp_mux=offered.rtcp_mux,
    )
    return Answer(sdp=answer, media=negotiated)


def build_offer(config: AnswerConfig, *, telephone_event_pt: int = 101) -> SessionDescription:
    """Build our offer for an outgoing call leg: one sendrecv audio stream (RFC 3264 §5).

    The codecs go in ``config.codecs`` order with their static payload types, followed by
    ``telephone-event`` (events 0-16, RFC 4733 §2.4.1) on ``telephone_event_pt``.

    Raises:
        ValueError: when ``telephone_event_pt`` is not a dynamic payload type (96..127).
    """
    if not 96 <= telephone_event_pt <= 127:
        raise ValueError(f"telephone-event payload type {telephone_event_pt} is not in 96..127")
    codecs = [Codec(name.upper(), *_STATIC[name.upper()]) for name in config.codecs]
    events = Codec(_TELEPHONE_EVENT, telephone_event_pt)
    media = _audio_media(
        [*codecs, events],
        port=config.port,
        proto="RTP/AVP",
        fmtp={telephone_event_pt: "0-16"},
        tail=[("ptime", str(config.ptime)), ("sendrecv", None)],
    )
    return SessionDescription(origin=_origin(config), connection=config.address, media=(media,))


def negotiated_from_answer(
    offer: SessionDescription, answer: SessionDescription
) -> NegotiatedMedia:
    """Read the media agreed by the answer to our offer (UAC side, RFC 3264 §6.1 and §7).

    The first audio stream the answer accepted (non-zero port, RTP/AVP) is used; its formats
    that we offered and that are not ``telephone-event`` are the codecs, the first the one we
    send ("it SHOULD use the first media format listed in the answer", RFC 3264 §7).

    Raises:
        NoCommonCodec: when the answer rejected every audio stream.
        SdpError: when the m= lines do not match the offer's, the answer picked a format we
            did not offer, or the stream has no connection address.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(
            f"the answer has {len(answer.media)} m= lines for the offer's {len(offer.media)} "
            "(RFC 3264 §6)"
        )
    for ours, theirs in zip(offer.media, answer.media, strict=True):
        if _usable_audio(theirs):
            return _negotiated(ours, answer, theirs)
    raise NoCommonCodec("the answer rejected every audio stream of our offer (RFC 3264 §6)")


def _negotiated(
    ours: MediaDescription, answer: SessionDescription, theirs: MediaDescription
) -> NegotiatedMedia:
    agreed = [c for c in _codecs(theirs, ours) if str(c.payload_type) in ours.formats]
    audio = [c for c in agreed if c.name != _TELEPHONE_EVENT]
    if not audio:
        raise SdpError(
            f"the answer's audio formats {' '.join(theirs.formats)} hold no codec of our offer "
            "(RFC 3264 §6.1)"
        )
    remote = _remote_address(answer, theirs)
    rate = audio[0].clock_rate
    return NegotiatedMedia(
        codecs=tuple(c for c in audio if c.clock_rate == rate),
        telephone_event=_telephone_event(agreed, rate),
        remote_address=remote,
        remote_port=theirs.port,
        ptime=theirs.ptime or ours.ptime or _DEFAULT_PTIME,
        direction=_our_direction(answer.direction_of(theirs), remote),
        rtcp_mux=ours.rtcp_mux and theirs.rtcp_mux,
    )


def _usable_audio(media: MediaDescription) -> bool:
    return media.media == "audio" and media.port != 0 and media.proto.upper() == "RTP/AVP"


def _accepted_stream(offer: SessionDescription, config: AnswerConfig) -> tuple[int, list[Codec]]:
    offered: list[str] = []
    for index, media in enumerate(offer.media):
        if not _usable_audio(media):
            continue
        codecs = _codecs(media)
        if chosen := _supported(codecs, config.codecs):
            return index, chosen
        offered += [c.name for c in codecs] or list(media.formats)
    if not offered:
        raise NoCommonCodec("the offer has no RTP/AVP audio stream with a non-zero port")
    raise NoCommonCodec(
        f"none of the offered audio codecs ({', '.join(offered)}) is one we use "
        f"({', '.join(config.codecs)})"
    )


def _codecs(media: MediaDescription, offer: MediaDescription | None = None) -> list[Codec]:
    """The formats of ``media`` we can name: by its rtpmap, ``offer``'s, or the static table."""
    rtpmaps = {**(offer.rtpmaps if offer else {}), **media.rtpmaps}
    found: list[Codec] = []
    for fmt in media.formats:
        pt = int(fmt) if fmt.isascii() and fmt.isdigit() else -1
        if pt in rtpmaps:
            name, rate, channels = rtpmaps[pt]
            if channels == 1:  # all we handle is mono audio
                found.append(Codec(_canonical(name), pt, rate))
        elif pt in _STATIC_BY_PT:
            name, rate = _STATIC_BY_PT[pt]
            found.append(Codec(name, pt, rate))
    return found


def _canonical(name: str) -> str:
    if name.upper() in _STATIC:
        return name.upper()
    return _TELEPHONE_EVENT if name.lower() == _TELEPHONE_EVENT else name


def _supported(codecs: list[Codec], preference: tuple[str, ...]) -> list[Codec]:
    """The offered ``codecs`` we use, in ``preference`` order; the first offered of a name."""
    found: list[Codec] = []
    for name in preference:
        rate = _STATIC[name.upper()][1]
        matching = (c for c in codecs if c.name == name.upper() and c.clock_rate == rate)
        found += [codec] if (codec := next(matching, None)) else []
    return found


def _telephone_event(codecs: list[Codec], clock_rate: int) -> Codec | None:
    # RFC 4733 §2.1: events use the clock rate of the audio they accompany.
    matching = (c for c in codecs if c.name == _TELEPHONE_EVENT and c.clock_rate == clock_rate)
    return next(matching, None)


def _remote_address(sdp: SessionDescription, media: MediaDescription) -> str:
    address = sdp.connection_of(media)
    if address is None:
        raise SdpError(f"m={media.media} has no c= address (RFC 4566 §5.7)")
    return address


def _our_direction(theirs: str, remote_address: str) -> str:
    ours = hold_answer_direction(theirs)
    if remote_address == _HOLD_ADDRESS:  # RFC 3264 §8.4: send neither RTP nor RTCP to it
        return _WITHOUT_SEND.get(ours, ours)
    return ours


def _audio_media(
    codecs: list[Codec], *, port: int, proto: str, fmtp: dict[int, str], tail: list[Attribute]
) -> MediaDescription:
    """An audio m= line: an rtpmap per codec, the telephone-event fmtp, ptime, ``tail``."""
    attributes: list[Attribute] = [
        ("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in codecs
    ]
    events = [c.payload_type for c in codecs if c.name == _TELEPHONE_EVENT]
    attributes += [("fmtp", f"{pt} {fmtp[pt]}") for pt in events if pt in fmtp]
    return MediaDescription(
        media="audio",
        port=port,
        proto=proto,
        formats=tuple(str(c.payload_type) for c in codecs),
        attributes=(*attributes, *tail),
    )


def _accepted_media(
    offered: MediaDescription, codecs: list[Codec], port: int, tail: list[Attribute]
) -> MediaDescription:
    if offered.rtcp_mux:  # RFC 5761 §5.1.1: an answerer accepting multiplexing echoes rtcp-mux
        tail = [*tail, ("rtcp-mux", None)]
    return _audio_media(codecs, port=port, proto=offered.proto, fmtp=offered.fmtp, tail=tail)


def _rejected(media: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a rejected stream MUST be answered with port 0; its formats are ignored.
    return MediaDescription(media=media.media, port=0, proto=media.proto, formats=media.formats)


def _origin(config: AnswerConfig) -> Origin:
    return Origin(
        username=config.username,
        sess_id=config.session_id,
        sess_version=config.session_version,
        addrtype="IP6" if ":" in config.address else "IP4",
        address=config.address,
    )
