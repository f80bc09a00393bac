"""Mixing linear PCM frames and measuring their level, vectorised over many streams at once.

Theory of operation
-------------------
Frames are 16-bit linear PCM (the G.711 decoder's output, ITU-T G.711 Tables 1a/2a), one frame
per row. Mixing is what an RTP mixer does (RFC 3550 §7.1): add the samples of each contributing
stream. The sum is taken in int32, so it cannot wrap, and then clipped to the int16 rails: a loud
sum saturates (a flat top) instead of wrapping around into a full-scale click.

The level of a frame is its RMS in dBFS relative to full scale 32768, i.e. dBov in the sense of
ITU-T G.100.1: a full-scale square wave is 0 dB and a full-scale sine is -3.01 dB (AES17 would
call that sine 0 dBFS; this module does not). Levels below ``DBFS_FLOOR`` (-120 dB), digital
silence included, are reported as the floor, so every result is finite: it compares, averages
and serialises (JSON has no -inf) without special cases. One LSB of RMS is -90.3 dB, so the floor
only ever clamps frames that are all zeros or almost so.

Everything works on whole arrays; there is no per-sample Python loop.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["DBFS_FLOOR", "FULL_SCALE", "frame_dbfs", "mix", "mix_rows", "silence_threshold"]

FULL_SCALE = 32768
DBFS_FLOOR = -120.0

_INT16_MIN = -32768
_INT16_MAX = 32767
# The floor as a power ratio: 10 ** (DBFS_FLOOR / 10).
_POWER_FLOOR = math.pow(10.0, DBFS_FLOOR / 10.0)


def mix(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Mix two frames sample by sample with a saturating sum (RFC 3550 §7.1 mixer).

    Args:
        a: A frame of 16-bit linear PCM.
        b: A frame of the same shape.

    Returns:
        A new int16 array: ``a + b`` computed in int32 and clipped to [-32768, 32767].

    Raises:
        ValueError: if the two frames differ in shape.
    """
    if a.shape != b.shape:
        raise ValueError(f"cannot mix a frame of shape {a.shape} with one of shape {b.shape}")
    total = np.add(a, b, dtype=np.int32)
    return _saturate(total)


def mix_rows(frames: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Mix k frames, given as the rows of a (k, n) array, into one frame (RFC 3550 §7.1).

    Zero rows mix to silence (n zeros). The sum of all rows is taken before clipping, so a
    loud row cancelled by an opposite one is not clipped on the way.

    Args:
        frames: A (k, n) array of 16-bit linear PCM, one frame per row.

    Returns:
        A new int16 array of n samples.

    Raises:
        ValueError: if ``frames`` is not two-dimensional.
    """
    if frames.ndim != 2:
        raise ValueError(f"mix_rows takes a (k, n) array of frames, not {frames.ndim}-D")
    total = frames.sum(axis=0, dtype=np.int32)
    return _saturate(total)


def frame_dbfs(frames: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """RMS level of each frame in dB relative to full scale (ITU-T G.100.1 dBov).

    The last axis holds the samples: a (k, n) array gives k levels, one per stream, and a single
    frame of n samples gives a 0-d array. A full-scale sine reads -3.01 dB, a full-scale square
    wave 0 dB, and anything quieter than ``DBFS_FLOOR`` (digital silence too) reads
    ``DBFS_FLOOR``.

    Args:
        frames: 16-bit linear PCM, samples along the last axis.

    Returns:
        A float64 array of shape ``frames.shape[:-1]``, each value in [DBFS_FLOOR, 0].

    Raises:
        ValueError: if the frames hold no samples (the last axis is empty or missing).
    """
    if frames.ndim == 0 or frames.shape[-1] == 0:
        raise ValueError("cannot measure the level of a frame with no samples")
    n = frames.shape[-1]
    rows = frames.reshape(-1, n).astype(np.float64)
    # Exact: a row's sum of squares stays below 2**53 for any n under 2**23 samples.
    level: npt.NDArray[np.float64] = np.einsum("ij,ij->i", rows, rows)
    level *= 1.0 / (n * float(FULL_SCALE) ** 2)
    np.maximum(level, _POWER_FLOOR, out=level)
    np.log10(level, out=level)
    level *= 10.0
    return level.reshape(frames.shape[:-1])


def silence_threshold(dbfs: float, samples: int) -> float:
    """The sum of squares below which a frame of ``samples`` samples is quieter than ``dbfs``.

    For ``d`` above ``DBFS_FLOOR``, ``float(x @ x) < silence_threshold(d, x.size)`` (x as float64)
    is ``frame_dbfs(x) < d`` without the logarithm, for a hot path that tests one frame at a
    time (ITU-T G.100.1 dBov). Below the floor, digital silence still counts as quieter.
    """
    return samples * float(FULL_SCALE) ** 2 * math.pow(10.0, dbfs / 10.0)


def _saturate(total: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    # In place with two ufuncs: np.clip costs several times more on 160-sample frames.
    np.maximum(total, _INT16_MIN, out=total)
    np.minimum(total, _INT16_MAX, out=total)
    return total.astype(np.int16)
