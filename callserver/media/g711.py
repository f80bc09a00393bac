"""G.711 µ-law (PCMU) and A-law (PCMA) by lookup table (ITU-T G.711; RFC 3551 §4.5.14).

Theory of operation
-------------------
Every table is computed once, at import, from the G.711 segment/quantisation algorithm as Sun
Microsystems' public-domain ``g711.c`` writes it (the coder in CPython's ``audioop``, and the
same segments as the ITU-T G.191 reference ``g711.c``), with numpy over all inputs at once:

* decode: ``int16[256]``, indexed by the code octet;
* encode: ``uint8[65536]``, indexed by the 16-bit linear sample viewed as ``uint16``, so encoding a
  frame is one ``table.take(samples.view(np.uint16))`` and decoding one is
  ``table.take(np.frombuffer(payload, np.uint8))``: no Python loop per sample;
* transcode: a 256-octet ``bytes.translate`` table per direction (decode, then encode).

The encoders take 16-bit linear input and drop the bits G.711 does not carry (µ-law works on 14
bits, A-law on 13), exactly as ``g711.c`` does. Negative µ-law magnitudes are formed as
``-(x >> 2)``, like Sun's ``g711.c`` and ``audioop``; G.191's ``ulaw_compress`` takes the one's
complement (``~x >> 2``) and so lands one code apart at some negative decision levels. The
vectors in tests/vectors/g711 pin this module to ``audioop``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = [
    "PAYLOAD_TYPES",
    "SILENCE_BYTE",
    "alaw_decode",
    "alaw_encode",
    "check_codec",
    "decode",
    "encode",
    "of_law",
    "transcode",
    "ulaw_decode",
    "ulaw_encode",
]

# RFC 3551 §6 (Table 4): the static payload types of the two G.711 laws.
PAYLOAD_TYPES: dict[str, int] = {"PCMU": 0, "PCMA": 8}

_BIAS = 0x84  # µ-law: the bias added before the segment search (132 on the 16-bit scale)
_CLIP = 8159  # µ-law: the largest magnitude coded, on the 14-bit scale
_SEG_END_ULAW = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_END_ALAW = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ALAW_EVEN_BITS = 0x55  # G.711: A-law inverts the even bits of every octet


def _all_codes() -> npt.NDArray[np.int32]:
    return np.arange(256, dtype=np.int32)


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, at the position of its bit pattern read as uint16."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    """G.711 Table 2a: µ-law codes are sent inverted; sign, 3-bit segment, 4-bit step."""
    code = ~_all_codes() & 0xFF
    magnitude = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    """G.711 Table 2: bias the 14-bit magnitude, find its segment, keep 4 bits of it."""
    pcm = _all_samples() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    biased = np.minimum(np.abs(pcm), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEG_END_ULAW, biased).astype(np.int32)
    step = (biased >> (segment + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | step)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    """G.711 Table 1a: even bits inverted; sign set means positive; segment 0 has no offset."""
    code = _all_codes() ^ _ALAW_EVEN_BITS
    step = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    magnitude = np.where(segment == 0, step + 8, (step + 0x108) << np.maximum(segment - 1, 0))
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    """G.711 Table 1: the 13-bit magnitude's segment and 4 bits of it (segments 0, 1: one step)."""
    pcm = _all_samples() >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_SEG_END_ALAW, magnitude).astype(np.int32)
    step = (magnitude >> np.maximum(segment, 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | step)
    return (code ^ mask).astype(np.uint8)


_ULAW_DECODE = _ulaw_decode_table()
_ULAW_ENCODE = _ulaw_encode_table()
_ALAW_DECODE = _alaw_decode_table()
_ALAW_ENCODE = _alaw_encode_table()
for _table in (_ULAW_DECODE, _ULAW_ENCODE, _ALAW_DECODE, _ALAW_ENCODE):
    _table.flags.writeable = False

# The code for linear 0: what a silent frame is made of.
SILENCE_BYTE: dict[str, int] = {"PCMU": int(_ULAW_ENCODE[0]), "PCMA": int(_ALAW_ENCODE[0])}

_TRANSCODE: dict[tuple[str, str], bytes] = {
    ("PCMU", "PCMA"): _ALAW_ENCODE[_ULAW_DECODE.view(np.uint16)].tobytes(),
    ("PCMA", "PCMU"): _ULAW_ENCODE[_ALAW_DECODE.view(np.uint16)].tobytes(),
}


def _encode_with(table: npt.NDArray[np.uint8], samples: npt.NDArray[np.int16]) -> bytes:
    if samples.dtype != np.int16:
        raise ValueError(f"G.711 encodes int16 samples, not {samples.dtype}")
    return table.take(samples.view(np.uint16)).tobytes()


def _decode_with(table: npt.NDArray[np.int16], payload: bytes) -> npt.NDArray[np.int16]:
    return table.take(np.frombuffer(payload, dtype=np.uint8))


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear samples to µ-law octets (ITU-T G.711 Table 2a).

    Raises:
        ValueError: if ``samples`` is not an int16 array.
    """
    return _encode_with(_ULAW_ENCODE, samples)


def ulaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """Decode µ-law octets to a new int16 array (ITU-T G.711 Table 2a)."""
    return _decode_with(_ULAW_DECODE, payload)


def alaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear samples to A-law octets (ITU-T G.711 Table 1a).

    Raises:
        ValueError: if ``samples`` is not an int16 array.
    """
    return _encode_with(_ALAW_ENCODE, samples)


def alaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """Decode A-law octets to a new int16 array (ITU-T G.711 Table 1a)."""
    return _decode_with(_ALAW_DECODE, payload)


_ENCODERS: dict[str, Callable[[npt.NDArray[np.int16]], bytes]] = {
    "PCMU": ulaw_encode,
    "PCMA": alaw_encode,
}
_DECODERS: dict[str, Callable[[bytes], npt.NDArray[np.int16]]] = {
    "PCMU": ulaw_decode,
    "PCMA": alaw_decode,
}


def check_codec(codec: str) -> None:
    """Raises ValueError unless ``codec`` is "PCMU" or "PCMA" (RFC 3551 §4.5.14)."""
    if codec not in PAYLOAD_TYPES:
        raise ValueError(f"codec {codec!r} is not G.711: expected 'PCMU' or 'PCMA'")


def of_law(codec: str, pcmu: bytes, pcma: bytes) -> bytes:
    """Of a payload encoded in both laws, the one in ``codec``.

    Raises:
        ValueError: ``codec`` is not "PCMU" or "PCMA".
    """
    if codec == "PCMU":
        return pcmu
    if codec != "PCMA":
        check_codec(codec)  # raises
    return pcma


def encode(codec: str, samples: npt.NDArray[np.int16]) -> bytes:
    """Encode int16 samples with ``codec`` ("PCMU" or "PCMA", RFC 3551 §4.5.14).

    Raises:
        ValueError: for another codec name, or samples that are not int16.
    """
    check_codec(codec)
    return _ENCODERS[codec](samples)


def decode(codec: str, payload: bytes) -> npt.NDArray[np.int16]:
    """Decode a ``codec`` ("PCMU" or "PCMA") payload to int16 samples (RFC 3551 §4.5.14).

    Raises:
        ValueError: for another codec name.
    """
    check_codec(codec)
    return _DECODERS[codec](payload)


def transcode(payload: bytes, source: str, target: str) -> bytes:
    """Convert a G.711 payload between the laws, octet by octet (``bytes.translate``).

    Each direction decodes to linear and re-encodes (ITU-T G.711 Tables 1 and 2); the payload is
    returned as it is when ``source == target``.

    Raises:
        ValueError: if either codec is not "PCMU" or "PCMA".
    """
    check_codec(source)
    check_codec(target)
    if source == target:
        return payload
    return payload.translate(_TRANSCODE[source, target])
