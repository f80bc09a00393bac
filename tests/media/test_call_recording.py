"""Tests for recording a whole call (callserver.media.call_recording, recording_writer).

No sockets: two streams are bridged by hand, packets go in through ``MediaStream.receive``
and the capture tick runs by hand; the writer's thread writes real files in a temp dir.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from callserver.media.capture import AudioCapture
from callserver.media.recording import temporary_path
from callserver.media.recording_writer import CallRecording, RecordingWriter
from callserver.media.tones import sine
from tests.media.streams import PEER
from tests.media.test_capture import SETTINGS, Leg, peak_hz, read_wav, run


def bridged() -> tuple[Leg, Leg]:
    """A caller's leg and another party's, bridged as the engine bridges them."""
    a, b = Leg(1), Leg(2)
    a.stream.peer, b.stream.peer = b.stream, a.stream
    return a, b


def record(tmp_path: Path, mode: str, a_hz: int = 440, b_hz: int = 1000) -> Path:
    """A second of each leg's tone recorded in ``mode``; the published file."""
    a, b = bridged()
    capture = AudioCapture(SETTINGS)
    recording = capture.record_call(a.stream, tmp_path / "r" / "call.wav", mode)  # type: ignore[arg-type]
    capture.tick(1.0)  # the peer is tapped from the first tick
    run(capture, [(a, a.packets(sine(a_hz, 1000))), (b, b.packets(sine(b_hz, 1000)))])
    capture.stop_call_recording(a.stream)
    result = recording.done.result(timeout=10)
    capture.calls.writer.close()
    assert result.path is not None and result.error is None
    return result.path


def test_stereo_puts_the_caller_left_and_the_other_party_right(tmp_path: Path) -> None:
    """A stereo recording holds the caller's tone on the left and the peer's on the right."""
    params, samples = read_wav(record(tmp_path, "stereo"))
    assert params == (2, 2, 8000)
    left, right = samples[0::2], samples[1::2]
    assert abs(peak_hz(left[1600:6400]) - 440) < 10
    assert abs(peak_hz(right[1600:6400]) - 1000) < 10


def test_mixed_holds_both_tones_in_one_channel(tmp_path: Path) -> None:
    """A mixed recording is mono and holds both parties' tones."""
    params, samples = read_wav(record(tmp_path, "mixed"))
    assert params == (1, 2, 8000)
    spectrum = np.abs(np.fft.rfft(samples[1600:6400].astype(np.float64)))
    bins = np.fft.rfftfreq(4800, 1 / 8000)
    strongest = sorted(bins[np.argsort(spectrum)[-2:]])
    assert abs(strongest[0] - 440) < 10 and abs(strongest[1] - 1000) < 10


def test_file_runs_at_the_clock_pace_and_is_published_atomically(tmp_path: Path) -> None:
    """Every tick writes one 20 ms frame; only the final name is left once published."""
    path = record(tmp_path, "stereo")
    _params, samples = read_wav(path)
    assert len(samples) // 2 == 51 * 160  # the first, empty tick and 50 ticks of tone
    assert not temporary_path(path).exists()


def test_without_a_peer_the_right_channel_is_what_we_play(tmp_path: Path) -> None:
    """Before anything is bridged the other channel is what the server sends the caller."""
    a = Leg(1)
    capture = AudioCapture(SETTINGS)
    recording = capture.record_call(a.stream, tmp_path / "call.wav", "stereo")
    assert a.stream.capture_rx and a.stream.capture_tx
    for i in range(10):
        a.stream.tx_audio.append(b"\x55" * 160)  # PCMA silence
        capture.tick(1.0 + 0.02 * i)
    capture.stop_call_recording(a.stream)
    assert not a.stream.capture_rx and not a.stream.capture_tx
    assert recording.done.result(timeout=10).seconds == pytest.approx(0.2)
    capture.calls.writer.close()


def test_a_new_peer_is_followed_and_the_old_one_released(tmp_path: Path) -> None:
    """A transfer's new peer is tapped from the next tick; the old peer stops capturing."""
    a, b = bridged()
    c = Leg(3)
    capture = AudioCapture(SETTINGS)
    capture.record_call(a.stream, tmp_path / "call.wav", "mixed")
    capture.tick(1.0)
    assert b.stream.capture_rx
    a.stream.peer, c.stream.peer, b.stream.peer = c.stream, a.stream, None
    capture.tick(1.02)
    assert c.stream.capture_rx and not b.stream.capture_rx
    recording = capture.stop_call_recording(a.stream)
    assert recording is not None
    recording.done.result(timeout=10)
    assert not c.stream.capture_rx
    capture.calls.writer.close()


def test_releasing_a_recorded_stream_ends_its_recording_and_its_peers_capture(
    tmp_path: Path,
) -> None:
    """A recorded stream that closes (``release``, while still bridged) publishes its file,
    and its peer, captured only for the recording, stops capturing."""
    a, b = bridged()
    capture = AudioCapture(SETTINGS)
    recording = capture.record_call(a.stream, tmp_path / "call.wav", "stereo")
    capture.tick(1.0)
    assert b.stream.capture_rx
    assert capture.release(a.stream, 1.02) is None  # no prompt recording ran
    assert recording.done.result(timeout=10).path is not None
    assert not b.stream.capture_rx and not b.stream.capture_tx
    capture.calls.writer.close()


def test_a_full_queue_drops_frames_counted_and_logged(tmp_path: Path) -> None:
    """With the writer stuck, frames beyond its queue are dropped, counted and logged once."""
    gate = threading.Event()

    class Stuck(CallRecording):
        def _open(self) -> None:
            gate.wait()

    writer = RecordingWriter(max_batches=3)
    writer.open(Stuck(tmp_path / "stuck.wav", "mixed"))
    a = Leg(1)
    capture = AudioCapture(SETTINGS)
    capture.calls.writer = writer
    recording = capture.record_call(a.stream, tmp_path / "call.wav", "mixed")
    with capture_logs() as logs:
        for i in range(10):
            capture.tick(1.0 + 0.02 * i)
    assert (recording.frames, recording.dropped) == (3, 7)
    assert [e["event"] for e in logs] == ["media.call_recording_dropped"]
    gate.set()
    capture.stop_call_recording(a.stream)
    assert recording.done.result(timeout=10).seconds == pytest.approx(0.06)
    writer.close()


def test_a_disk_error_ends_the_recording_and_nothing_else(tmp_path: Path) -> None:
    """A folder that cannot be made fails the recording on the thread; the tap stops, logged."""
    locked = tmp_path / "locked"
    locked.write_bytes(b"a file where the folder should be")
    a = Leg(1)
    capture = AudioCapture(SETTINGS)
    recording = capture.record_call(a.stream, locked / "call.wav", "mixed")
    for _ in range(1000):  # the writer's thread opens the file
        if recording.error is not None:
            break
        time.sleep(0.01)
    with capture_logs() as logs:
        capture.tick(1.0)
    assert recording.done.result(timeout=10).path is None
    assert capture.calls.recording(a.stream) is None and not a.stream.capture_rx
    assert [e["event"] for e in logs] == ["media.call_recording_failed"]
    a.stream.receive(a.packets(sine(440, 20))[0], PEER, 1.02)  # the stream goes on
    capture.calls.writer.close()


def test_a_30_ms_clock_writes_240_samples_a_tick(tmp_path: Path) -> None:
    """With ptime 30 each tick writes 30 ms a channel, so the file keeps the clock's pace."""
    a, _b = bridged()
    capture = AudioCapture(SETTINGS.model_copy(update={"ptime": 30}))
    recording = capture.record_call(a.stream, tmp_path / "call.wav", "stereo")
    for i in range(10):
        capture.tick(1.0 + 0.03 * i)
    capture.stop_call_recording(a.stream)
    result = recording.done.result(timeout=10)
    capture.calls.writer.close()
    assert result.seconds == pytest.approx(0.3)
    _params, samples = read_wav(tmp_path / "call.wav")
    assert len(samples) == 2 * 10 * 240


def test_a_tick_after_skipped_ticks_keeps_the_calls_length(tmp_path: Path) -> None:
    """The clock skipped 4 ticks (a late loop): the next tick stands for 5 and writes 5 frames,
    the 5 packets of tone that arrived meanwhile first, so the file keeps wall time and the
    audio; then each tick writes one frame again."""
    a, _ = bridged()
    capture = AudioCapture(SETTINGS)
    recording = capture.record_call(a.stream, tmp_path / "call.wav", "stereo")  # type: ignore[arg-type]
    capture.tick(1.0)
    packets = a.packets(sine(440, 100))
    for i, packet in enumerate(packets):  # 5 packets, none read by a tick
        a.stream.receive(packet, PEER, 1.0 + 0.02 * (i + 1))
    capture.tick(1.1, span=5)
    capture.tick(1.12)
    assert recording.frames == 1 + 5 + 1
    capture.stop_call_recording(a.stream)
    result = recording.done.result(timeout=10)
    capture.calls.writer.close()
    assert result.path is not None
    _params, samples = read_wav(result.path)
    left = samples[0::2]
    assert len(left) == 7 * 160
    assert abs(peak_hz(left[160 : 6 * 160]) - 440) < 10
    assert not left[6 * 160 :].any()  # nothing arrived for the last tick: silence
