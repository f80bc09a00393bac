"""bench/register_path: CPU and memory of authenticated REGISTERs through the whole stack, in
one process, without sockets.

The phones of bench/register (its generated centrex.yaml, trunks.yaml offering MD5) register
by feeding REGISTER datagrams straight into ``Server.datagram_received`` (parse,
transactions, the registrar's throttle, digest and bindings, the 401 and the 200) with sends
kept by a stand-in socket: REGISTER, the 401, the REGISTER with credentials answering it, the
200 (RFC 3261 §10.3, §22). The loop turns after each registration, so the store's writer gets
its batch as in a server. Only the server's calls are timed (the phone's own hashing is not),
with the store's worker thread counted (process CPU time). It prints the CPU per registration
(µs) of the best of --rounds rounds of --subscribers phones (a round registers every phone
again, refreshing its binding), then the memory the bindings hold: Python's allocations
(tracemalloc) once every transaction has ended and a full collection ran, per binding, and the
allocation sites that hold the most.

    .venv/bin/python bench/register_path.py --subscribers 20000
    .venv/bin/python bench/register_path.py --subscribers 5000 --profile   # cProfile's top
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import tempfile
import time
import tracemalloc
from pathlib import Path

from harness import StandInSocket
from register import Phones, write_phones

from callserver.app import Server
from callserver.calls.registration import Registration
from callserver.config.settings import load_settings
from callserver.process.gctuning import tune_gc
from callserver.process.logs import configure_logging
from callserver.sip.auth import build_authorization, select_challenge
from callserver.sip.events import Peer

SERVER = ("127.0.0.1", 5060)
REGISTER = (
    "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{user}-{round}-{cseq}\r\n"
    "From: <sip:{user}@127.0.0.1>;tag={round}SIPpTag00{user}\r\n"
    "To: <sip:{user}@127.0.0.1>\r\n"
    "Call-ID: {round}-{user}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\n"
    "Contact: <sip:{user}@127.0.0.1:6000>\r\nExpires: 3600\r\nMax-Forwards: 70\r\n"
    "{authorization}Content-Length: 0\r\n\r\n"
)


def _challenges(response: bytes) -> list[str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode()
    prefix = "www-authenticate:"
    return [
        line[len(prefix) :].strip()
        for line in head.split("\r\n")
        if line.lower().startswith(prefix)
    ]


class Driver:
    """A server without sockets and the phones that register with it."""

    def __init__(self, server: Server, sink: StandInSocket, phones: Phones) -> None:
        self.server, self.sink, self.phones = server, sink, phones
        self.peer = Peer("udp", "127.0.0.1", 6000)
        self.cpu = 0.0  # the server's CPU seconds so far

    def _feed(self, text: str) -> bytes:
        self.sink.sent.clear()
        start = time.process_time()
        self.server.datagram_received(text.encode(), self.peer)
        self.cpu += time.process_time() - start
        return self.sink.sent[-1]

    async def register(self, user: str, password: str, round_: int) -> None:
        """One registration: REGISTER, 401, REGISTER with credentials, 200."""
        fields = {"user": user, "round": round_}
        challenged = self._feed(REGISTER.format(cseq=1, authorization="", **fields))
        challenge = select_challenge(_challenges(challenged))
        if not challenged.startswith(b"SIP/2.0 401") or challenge is None:
            raise RuntimeError(f"{user}: no challenge: {challenged[:60]!r}")
        value = build_authorization(
            challenge,
            method="REGISTER",
            uri="sip:127.0.0.1:5060",
            username=user,
            password=password,
            cnonce=f"{round_:08x}",
        )
        answer = self._feed(
            REGISTER.format(cseq=2, authorization=f"Authorization: {value}\r\n", **fields)
        )
        if not answer.startswith(b"SIP/2.0 200"):
            raise RuntimeError(f"{user}: {answer[:60]!r}")
        start = time.process_time()
        await asyncio.sleep(0)  # a turn of the loop: the store's batch goes to its writer
        self.cpu += time.process_time() - start

    async def round(self, credentials: list[tuple[str, str]], round_: int) -> float:
        """Every phone once; the server's CPU per registration, µs."""
        before = self.cpu
        for user, password in credentials:
            await self.register(user, password, round_)
        registration = self.server.calls.registration
        assert registration is not None and registration._written is not None
        await asyncio.wrap_future(registration._written)  # the last batch written
        return 1e6 * (self.cpu - before) / len(credentials)


def _credentials(phones: Phones) -> list[tuple[str, str]]:
    lines = phones.injection.read_text().splitlines()[1:]
    return [(user, password) for user, _, password in (line.partition(";") for line in lines)]


async def _server(directory: Path) -> tuple[Server, StandInSocket]:
    overrides = {
        "sip": {"listen": [f"udp:{SERVER[0]}:{SERVER[1]}"]},
        "trunks": directory / "trunks.yaml",
        "centrex": directory / "centrex.yaml",
        "data_dir": directory / "var",
        "registrar": {"register_burst": 20},
    }
    settings = load_settings(None, overrides)
    configure_logging("warning", "json")
    server = Server(settings)
    sink = StandInSocket()
    server.sockets.udp.append(sink)  # type: ignore[arg-type]
    server.calls.registration = Registration.open(
        settings,
        server.phones.account,
        auth=server.admission.auth,
        endpoint=server.endpoint,
        screening=server.calls.screening,
        loop=asyncio.get_running_loop(),
        wake=server.pump,
    )
    return server, sink


def _memory(driver: Driver, snapshot: tracemalloc.Snapshot, count: int) -> None:
    """Every transaction ended, a full collection: what the bindings hold, and where."""
    later = asyncio.get_running_loop().time() + 3600 - 1  # before the bindings' expiry
    driver.server.endpoint.handle_timer(later)
    driver.server.pump()
    gc.collect()
    held = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")
    total = sum(stat.size_diff for stat in held)
    print(f"memory: {total / count:.0f} bytes per binding (Python allocations held)")
    for stat in held[:12]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / count:7.0f} B  {frame.filename.rsplit('/', 3)[-1]}:{frame.lineno}"
        )


async def _measure(args: argparse.Namespace, directory: Path) -> None:
    phones = write_phones(directory, args.subscribers)
    credentials = _credentials(phones)
    server, sink = await _server(directory)
    tune_gc()  # as the server after its start-up
    driver = Driver(server, sink, phones)
    if args.memory:
        gc.collect()
        tracemalloc.start()
        snapshot = tracemalloc.take_snapshot()
        await driver.round(credentials, 0)
        _memory(driver, snapshot, len(credentials))
        tracemalloc.stop()
        return
    profile = cProfile.Profile() if args.profile else None
    best = float("inf")
    for round_ in range(args.rounds):
        if profile is not None:
            profile.enable()
        best = min(best, await driver.round(credentials, round_))
        if profile is not None:
            profile.disable()
    print(
        f"register path: {best:.0f} us CPU per registration "
        f"(best of {args.rounds} x {len(credentials)})"
    )
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(45)


def main() -> None:
    """Print the best round (or the memory, or the profile)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions")
    parser.add_argument("--memory", action="store_true", help="one round, its memory held")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="register-path-") as tmp:
        measured = _measure(args, Path(tmp))
        try:
            import uvloop
        except ImportError:
            asyncio.run(measured)
        else:
            uvloop.run(measured)


if __name__ == "__main__":
    main()
