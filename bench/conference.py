"""bench/conference: conference rooms on the shared media clock, end to end and per tick.

End to end: a fresh `callserver run`, pinned to one core (taskset), gets --participants calls
from bench/rtp_load, pinned to another, spread over --rooms meet-me numbers (call i dials room
i mod R: 50 in 5 rooms of 10 by default). Every call sends its own tone (bench/rtp_load
--audio) and the server mixes each room on its clock, sending every participant the others'
sum. Over the --duration window the row has the figures bench/media_capacity gives (see its
docstring): jitter50/jitter99/max are the send-interval jitter of the server's RTP to the
participants at the receiver (kernel stamps), lost/stopped/skipped, the server's cpu%,
others% (what else ran on its core), the clock's tick50/tick99/late99 and resyncs.

Per tick: the conference part of a tick alone (``ConferenceMixer.tick`` for the same rooms,
real ``MediaStream`` objects fed one RTP packet each per tick, in this process): its p50 and
p99 in microseconds over --ticks ticks, and per participant.

    .venv/bin/python bench/conference.py
    .venv/bin/python bench/conference.py --participants 100 --rooms 10 --duration 30
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from harness import free_port, start_server
from media_capacity import COLUMNS, TARGET_JITTER_MS, _machine, _settings
from rtp_window import Load, Row, measure

from callserver.media import g711
from callserver.media.conferencing import ConferenceMixer
from callserver.media.negotiated import StreamConfig
from callserver.media.stream import MediaStream

FIRST_NUMBER = 38733100700  # room k's meet-me number is FIRST_NUMBER + k


def write_rooms(directory: Path, rooms: int, size: int) -> list[str]:
    """One dialplan per room (conference, no PIN, room for ``size``); their numbers."""
    directory.mkdir(parents=True, exist_ok=True)
    numbers = [str(FIRST_NUMBER + k) for k in range(rooms)]
    for k, number in enumerate(numbers):
        plan = f'steps:\n  meet:\n    conference: "room-{k}"\n    max_participants: {size}\n'
        (directory / f"{number}.yaml").write_text(plan)
    return numbers


def end_to_end(args: argparse.Namespace) -> tuple[Row, Counter[str]]:
    """Fresh server, rtp_load's calls into the rooms, settle, window, hang-up, analysis; the
    row and the rooms the calls' CDRs name (how many of each)."""
    with tempfile.TemporaryDirectory(prefix="conference-") as tmp:
        workdir = Path(tmp)
        size = -(-args.participants // args.rooms)
        numbers = write_rooms(workdir / "dialplans", args.rooms, size)
        port = free_port()
        settings = _settings(workdir, port, args.participants)
        server = start_server(workdir, settings, port, args.server_core)
        load = Load(
            calls=args.participants,
            rate=args.rate,
            settle=args.settle,
            duration=args.duration,
            server_core=args.server_core,
            load_core=args.load_core,
            generator_args=("--numbers", ",".join(numbers), "--audio"),
        )
        try:
            row = measure(server, load, workdir)
        finally:
            server.stop()
        return row, _rooms_in_cdrs(server.data_dir / "cdr")


def _rooms_in_cdrs(directory: Path) -> Counter[str]:
    rooms: Counter[str] = Counter()
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            rooms[str(json.loads(line).get("conference"))] += 1
    return rooms


def _participant(sid: int) -> MediaStream:
    stream = MediaStream(sid, 20000 + 2 * sid, ssrc=sid, sequence=0, timestamp=0)
    config = StreamConfig(
        codec="PCMU",
        payload_type=0,
        telephone_event_pt=101,
        remote_host="127.0.0.1",
        remote_port=40000 + sid,
    )
    stream.configure(config, 0.0)
    return stream


def per_tick(participants: int, rooms: int, ticks: int) -> np.ndarray:
    """Seconds of each ``ConferenceMixer.tick`` for ``participants`` in ``rooms``."""
    mixer = ConferenceMixer()
    streams = [_participant(i + 1) for i in range(participants)]
    for i, stream in enumerate(streams):
        mixer.join(stream, f"room-{i % rooms}")
    tone = g711.encode("PCMU", np.round(3277 * np.sin(np.arange(160) / 4)).astype(np.int16))
    header = bytes([0x80, 0])
    durations = np.zeros(ticks)
    for n in range(ticks):
        for stream in streams:
            packet = header + (n + 1).to_bytes(2) + (160 * n).to_bytes(4) + stream.ssrc.to_bytes(4)
            stream.receive(packet + tone, ("127.0.0.1", 40000 + stream.stream_id), 0.0)
        start = time.perf_counter()
        mixer.tick(n)
        durations[n] = time.perf_counter() - start
    return durations


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window, s")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after the ramp, s")
    parser.add_argument("--rate", type=float, default=50.0, help="ramp: new calls per second")
    parser.add_argument("--ticks", type=int, default=3000, help="ticks of the per-tick part")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()
    if args.participants < 2 * args.rooms:
        parser.error("--participants must give every room at least two")
    return args


def main() -> int:
    """The end-to-end row, the per-tick figures, then the verdict."""
    args = _arguments()
    print(_machine())
    print(
        f"{args.participants} participants in {args.rooms} rooms; server on core "
        f"{args.server_core}, load on core {args.load_core}; {args.duration:g} s window; ms"
    )
    row, rooms = end_to_end(args)
    print(" ".join(f"{title:>8}" for title, _ in COLUMNS))
    print(" ".join(f"{value(row):>8}" for _, value in COLUMNS), flush=True)
    if row.failed:
        print(f"failed calls: {row.failed}")
    print("CDRs by the room they name: " + ", ".join(f"{k} {n}" for k, n in sorted(rooms.items())))
    ticks = per_tick(args.participants, args.rooms, args.ticks) * 1e6
    p50, p99 = np.percentile(ticks, [50, 99])
    print(
        f"ConferenceMixer.tick, {args.participants} participants in {args.rooms} rooms, "
        f"{args.ticks} ticks: p50 {p50:.0f} us, p99 {p99:.0f} us "
        f"({p50 / args.participants:.1f} us a participant at p50)"
    )
    ok = row.up == args.participants and row.lost == 0 and row.jitter_p99 <= TARGET_JITTER_MS
    print(
        f"{'PASS' if ok else 'FAIL'} vs target (all {args.participants} up, zero loss, send "
        f"jitter p99 <= {TARGET_JITTER_MS:g} ms): jitter p99 {row.jitter_p99:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
