"""Tests for G.711 µ-law and A-law against reference vectors (ITU-T G.711, RFC 3551 §4.5.14)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from callserver.media import g711

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "g711"
LAWS = {"PCMU": "ulaw", "PCMA": "alaw"}
ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
# The sign/segment bits are stored inverted (µ-law) or with the even bits inverted (A-law).
CODE_MASK = {"PCMU": 0xFF, "PCMA": 0x55}
# Low bits of the 16-bit input each law drops before quantising: µ-law codes 14 bits, A-law 13.
DROPPED = {"PCMU": 3, "PCMA": 0}
LARGEST = {"PCMU": 32124, "PCMA": 32256}


def rows(name: str) -> list[list[int]]:
    """The integer rows of one vector file, comments skipped."""
    text = (VECTORS / name).read_text(encoding="ascii")
    return [[int(f) for f in line.split()] for line in text.splitlines() if line[:1] != "#"]


def reference_encoder(codec: str) -> npt.NDArray[np.uint8]:
    """The reference code for every int16 input, expanded from the run-length vector file."""
    table = np.full(65536, -1, dtype=np.int32)
    for first, last, code in rows(f"{LAWS[codec]}_encode.txt"):
        table[first + 32768 : last + 32769] = code
    assert (table >= 0).all()
    return table.astype(np.uint8)


# Indexed by the int16 input viewed as uint16, like the module's own tables.
REFERENCE = {codec: np.roll(reference_encoder(codec), -32768) for codec in LAWS}


def segment(codec: str, codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """The 3-bit segment number of each code."""
    return ((codes.astype(np.int32) ^ CODE_MASK[codec]) & 0x70) >> 4


def step(codec: str, seg: int) -> int:
    """The quantisation step of a segment on the 16-bit scale (G.711 Tables 1a and 2a)."""
    return 8 << seg if codec == "PCMU" else 16 << max(seg - 1, 0)


@pytest.mark.parametrize("codec", LAWS)
def test_decode_matches_reference_for_all_codes(codec: str) -> None:
    """All 256 codes decode to the reference linear values."""
    expected = {row[0]: row[1] for row in rows(f"{LAWS[codec]}.txt")}
    assert sorted(expected) == list(range(256))
    decoded = g711.decode(codec, ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [expected[code] for code in range(256)]


@pytest.mark.parametrize("codec", LAWS)
def test_encode_matches_reference_for_every_int16(codec: str) -> None:
    """Every one of the 65536 int16 inputs encodes to the reference code."""
    encoded = np.frombuffer(g711.encode(codec, ALL_SAMPLES), dtype=np.uint8)
    expected = reference_encoder(codec)
    mismatches = np.flatnonzero(encoded != expected)
    assert mismatches.size == 0, f"first mismatch at input {int(ALL_SAMPLES[mismatches[0]])}"


@pytest.mark.parametrize("codec", LAWS)
def test_every_code_survives_decode_then_encode(codec: str) -> None:
    """encode(decode(code)) gives the code back, except µ-law's second zero."""
    round_trip = g711.encode(codec, g711.decode(codec, ALL_CODES))
    changed = {code: round_trip[code] for code in range(256) if round_trip[code] != code}
    if codec == "PCMU":
        # µ-law has two codes for zero, 0xFF (+0) and 0x7F (-0); both decode to 0 and the encoder
        # emits +0 for it, so 0x7F comes back as 0xFF. A-law has no zero level, so no exception.
        assert changed == {0x7F: 0xFF}
    else:
        assert changed == {}


@pytest.mark.parametrize("codec", LAWS)
def test_linear_round_trip_error_per_segment(codec: str) -> None:
    """decode(encode(x)) is within half a step of x in each segment (plus dropped bits)."""
    codes = np.frombuffer(g711.encode(codec, ALL_SAMPLES), dtype=np.uint8)
    error = np.abs(g711.decode(codec, codes.tobytes()).astype(np.int32) - ALL_SAMPLES)
    clipped = np.abs(ALL_SAMPLES.astype(np.int32)) > LARGEST[codec]
    segments = segment(codec, codes)
    for seg in range(8):
        in_segment = (segments == seg) & ~clipped
        worst = int(error[in_segment].max())
        assert worst == step(codec, seg) // 2 + DROPPED[codec], (seg, worst)
    # Beyond the largest level the coder saturates: the error is the distance to that level.
    over = np.abs(ALL_SAMPLES[clipped].astype(np.int32)) - LARGEST[codec]
    assert (error[clipped] == over).all()


@given(
    hnp.arrays(np.int16, st.integers(0, 400)),
    st.sampled_from(sorted(LAWS)),
)
def test_encoding_is_monotonic_and_matches_reference(
    samples: npt.NDArray[np.int16], codec: str
) -> None:
    """Any frame encodes like the reference, and larger inputs never decode smaller."""
    encoded = g711.encode(codec, samples)
    assert encoded == REFERENCE[codec][samples.view(np.uint16)].tobytes()
    order = np.argsort(samples, kind="stable")
    decoded = g711.decode(codec, encoded)[order]
    assert (np.diff(decoded.astype(np.int32)) >= 0).all()


def test_encode_accepts_strided_views() -> None:
    """A non-contiguous int16 view encodes like its contiguous copy."""
    samples = np.arange(-16000, 16000, 7, dtype=np.int16)
    for codec in LAWS:
        view = samples[::3]
        assert g711.encode(codec, view) == g711.encode(codec, view.copy())


def test_named_functions_match_the_codec_dispatch() -> None:
    """ulaw_*/alaw_* are the same coders as encode/decode by name."""
    samples = ALL_SAMPLES[::5]
    assert g711.ulaw_encode(samples) == g711.encode("PCMU", samples)
    assert g711.alaw_encode(samples) == g711.encode("PCMA", samples)
    assert (g711.ulaw_decode(ALL_CODES) == g711.decode("PCMU", ALL_CODES)).all()
    assert (g711.alaw_decode(ALL_CODES) == g711.decode("PCMA", ALL_CODES)).all()


def test_silence_byte_is_the_code_for_zero() -> None:
    """A frame of zeros encodes to SILENCE_BYTE repeated, the RFC 3551 static types are 0 and 8."""
    zeros = np.zeros(160, dtype=np.int16)
    assert g711.SILENCE_BYTE == {"PCMU": 0xFF, "PCMA": 0xD5}
    assert g711.PAYLOAD_TYPES == {"PCMU": 0, "PCMA": 8}
    for codec, silence in g711.SILENCE_BYTE.items():
        assert g711.encode(codec, zeros) == bytes([silence]) * 160
    assert g711.decode("PCMU", b"\xff").tolist() == [0]
    assert g711.decode("PCMA", b"\xd5").tolist() == [8]  # A-law has no zero level


def test_unknown_codec_is_named_in_the_error() -> None:
    """encode, decode and transcode reject a codec that is not G.711, naming it."""
    with pytest.raises(ValueError, match="'G729'"):
        g711.encode("G729", ALL_SAMPLES)
    with pytest.raises(ValueError, match="'pcmu'"):
        g711.decode("pcmu", b"\xff")
    with pytest.raises(ValueError, match="'opus'"):
        g711.transcode(b"\xff", "PCMU", "opus")


def test_of_law_picks_the_codecs_payload_and_names_any_other() -> None:
    """of_law gives the payload in the codec asked for, and rejects a codec not G.711."""
    assert (g711.of_law("PCMU", b"u", b"a"), g711.of_law("PCMA", b"u", b"a")) == (b"u", b"a")
    with pytest.raises(ValueError, match="'G722'"):
        g711.of_law("G722", b"u", b"a")


def test_encode_rejects_other_dtypes() -> None:
    """Samples must be int16; a float array is refused rather than reinterpreted."""
    with pytest.raises(ValueError, match="int16 samples, not float64"):
        g711.encode("PCMA", np.zeros(4))  # type: ignore[arg-type]


def test_transcode_round_trip_from_ulaw_stays_within_one_step() -> None:
    """PCMU -> PCMA -> PCMU moves no sample by more than one µ-law quantisation step."""
    back = g711.transcode(g711.transcode(ALL_CODES, "PCMU", "PCMA"), "PCMA", "PCMU")
    error = np.abs(g711.decode("PCMU", back).astype(np.int32) - g711.decode("PCMU", ALL_CODES))
    segments = segment("PCMU", np.frombuffer(ALL_CODES, dtype=np.uint8))
    steps = np.array([step("PCMU", int(seg)) for seg in segments])
    assert (error <= steps).all()


@pytest.mark.parametrize(("source", "target"), [("PCMU", "PCMA"), ("PCMA", "PCMU")])
def test_transcode_is_decode_then_encode(source: str, target: str) -> None:
    """Each translate table equals decoding with one law and encoding with the other."""
    expected = g711.encode(target, g711.decode(source, ALL_CODES))
    assert g711.transcode(ALL_CODES, source, target) == expected


@pytest.mark.parametrize("codec", LAWS)
def test_identity_transcode_returns_the_same_bytes(codec: str) -> None:
    """Transcoding to the same law returns the payload untouched."""
    payload = bytes(range(0, 256, 3))
    assert g711.transcode(payload, codec, codec) is payload
