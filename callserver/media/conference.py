"""Conference mixing: every participant hears the sum of the others (N-1), all rooms at once.

Theory of operation
-------------------
A conference focus mixes (RFC 4353 §5, RFC 3550 §7.1): each participant is sent the sum of the
other participants of its room, never its own voice. For P participants in R rooms the work is
done on whole arrays, once per tick for every room:

- the frames of all participants are the rows of one (P, n) array, ordered by room so that
  room r's rows start at ``starts[r]``;
- each room's total is one ``np.add.reduceat`` over those row runs, in int32 (it cannot wrap),
  plus any tone the room is being played (join and leave tones);
- each participant's mix is its room's total minus its own row, clipped to the int16 rails:
  a loud sum saturates instead of wrapping into a click (as ``mixer.mix_rows``).

Transcoding is part of the same pass. The G.711 laws of all participants are decoded with one
table of 512 entries (µ-law codes first, then A-law: index ``code + 256 * law``) and encoded
with one of 2 x 65 536 (index ``uint16(sample) + 65536 * law``), so PCMU and PCMA participants
share a room without a loop over either (ITU-T G.711 Tables 1a and 2a).

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from callserver.media import g711

__all__ = ["LAWS", "decode_rows", "encode_rows", "law_of", "mix_minus"]

LAWS = ("PCMU", "PCMA")  # a participant's law index: 0 µ-law, 1 A-law
_INT16_MIN = -32768
_INT16_MAX = 32767
_DECODE = np.concatenate([g711.decode(codec, bytes(range(256))) for codec in LAWS])
_ALL_SAMPLES = np.arange(65536, dtype=np.uint16).view(np.int16)  # indexed as uint16
_ENCODE = np.concatenate(
    [np.frombuffer(g711.encode(codec, _ALL_SAMPLES), dtype=np.uint8) for codec in LAWS]
)
_DECODE.flags.writeable = False
_ENCODE.flags.writeable = False


def law_of(codec: str) -> int:
    """The law index of a G.711 codec (0 PCMU, 1 PCMA).

    Raises:
        ValueError: ``codec`` is not PCMU or PCMA.
    """
    try:
        return LAWS.index(codec)
    except ValueError:
        raise ValueError(f"codec {codec!r} is not G.711: expected 'PCMU' or 'PCMA'") from None


def mix_minus(
    frames: npt.NDArray[np.int16],
    room_of: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    tones: npt.NDArray[np.int32] | None = None,
) -> npt.NDArray[np.int16]:
    """Each participant's N-1 mix: its room's sum without its own frame (RFC 3550 §7.1).

    Args:
        frames: A (P, n) array, one participant's frame per row, rows grouped by room.
        room_of: (P,) the room index of each row (non-decreasing: 0 ... R-1).
        starts: (R,) the first row of each room, strictly increasing, ``starts[0] == 0``.
        tones: (R, n) samples added to each room's sum (every participant hears them), or None.

    Returns:
        A new (P, n) int16 array, each row clipped to [-32768, 32767].

    Raises:
        ValueError: the shapes do not agree.
    """
    if frames.ndim != 2 or room_of.shape != frames.shape[:1]:
        raise ValueError(f"frames {frames.shape} and room_of {room_of.shape} do not agree")
    if tones is not None and tones.shape != (len(starts), frames.shape[1]):
        raise ValueError(f"tones {tones.shape} are not one frame per room")
    wide = frames.astype(np.int32)
    totals = np.add.reduceat(wide, starts, axis=0)
    if tones is not None:
        totals += tones
    out = totals[room_of]
    out -= wide
    np.maximum(out, _INT16_MIN, out=out)
    np.minimum(out, _INT16_MAX, out=out)
    return out.astype(np.int16)


def decode_rows(codes: npt.NDArray[np.uint8], law: npt.NDArray[np.intp]) -> npt.NDArray[np.int16]:
    """Decode a (P, n) array of G.711 octets, row p in law ``law[p]`` (ITU-T G.711)."""
    index = codes.astype(np.intp)
    index += law[:, None] << 8
    return _DECODE.take(index)


def encode_rows(samples: npt.NDArray[np.int16], law: npt.NDArray[np.intp]) -> bytes:
    """Encode a (P, n) int16 array, row p in law ``law[p]``; the rows' octets, concatenated."""
    index = samples.view(np.uint16).astype(np.intp)
    index += law[:, None] << 16
    return _ENCODE.take(index).tobytes()
