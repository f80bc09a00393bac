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
allocation sites that hold the most. A round's CPU includes waiting for its last changes to
be stored.

With --redis the bindings go to a private redis-server (bench/redis_nodes) through the
cluster's shared store instead of SQLite (``cluster.bindings.RedisBindingStore``), as a node of
several writes them: the CPU per registration then includes handing each change over, the
pipelined write and the node's own change coming back on its subscription. --delay N (with
--redis) instead registers N phones one at a time, each until a second node's registrar has the
binding in force, and prints the delays (REGISTER's 200 on the first node to in force on the
second: the gathering interval, the writer thread, Redis, pub/sub).

    .venv/bin/python bench/register_path.py --subscribers 20000
    .venv/bin/python bench/register_path.py --subscribers 5000 --profile   # cProfile's top
    .venv/bin/python bench/register_path.py --subscribers 20000 --redis
    .venv/bin/python bench/register_path.py --subscribers 1000 --redis --delay 1000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import tempfile
import time
import tracemalloc
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path

from harness import StandInSocket
from redis_nodes import RedisServer, binding_node
from register import Phones, write_phones

from callserver.app import Server
from callserver.calls.registration import STORE_INTERVAL, Registration
from callserver.cluster.bindings import GATHER_INTERVAL, RedisBindingStore
from callserver.config.settings import load_settings
from callserver.process.gctuning import tune_gc
from callserver.process.logs import configure_logging
from callserver.registrar.binding import Binding
from callserver.registrar.registrar import Registrar
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

    def __init__(
        self,
        server: Server,
        sink: StandInSocket,
        phones: Phones,
        shared: RedisBindingStore | None = None,
    ) -> None:
        self.server, self.sink, self.phones, self.shared = server, sink, phones, shared
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
        start = time.process_time()
        await self.stored()
        self.cpu += time.process_time() - start
        return 1e6 * (self.cpu - before) / len(credentials)

    async def stored(self) -> None:
        """Until the last batch is stored (in Redis: written, and its echo taken)."""
        registration = self.server.calls.registration
        assert registration is not None
        await asyncio.sleep(2 * registration._store_interval)  # the last batch handed over
        assert registration._written is not None
        await asyncio.wrap_future(registration._written)
        if self.shared is not None:
            await self.shared.mirror.wait_written()
            await asyncio.sleep(0.05)  # the node's own changes come back on its subscription


def _credentials(phones: Phones) -> list[tuple[str, str]]:
    lines = phones.injection.read_text().splitlines()[1:]
    return [(user, password) for user, _, password in (line.partition(";") for line in lines)]


async def _server(
    directory: Path, shared: RedisBindingStore | None = None
) -> tuple[Server, StandInSocket]:
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
        store=shared,
        store_interval=STORE_INTERVAL if shared is None else GATHER_INTERVAL,
    )
    if shared is not None:
        shared.attach(server.calls.registration.changed_elsewhere)
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


async def _delays(driver: Driver, credentials: list[tuple[str, str]], url: str) -> None:
    """Each phone registers on the driver's node; the delay until node b has it in force."""
    loop = asyncio.get_running_loop()
    link, other = await binding_node(url, "bench-b")
    registration = driver.server.calls.registration
    assert registration is not None
    registrar = Registrar(registration.registrar.digest)  # node b's, only to look up
    arrived = asyncio.Event()

    def changed(aor: str, contact: str, binding: Binding | None) -> None:
        registrar.changed_elsewhere(aor, contact, binding, loop.time())
        arrived.set()

    other.attach(changed)
    delays = []
    for user, password in credentials:
        arrived.clear()
        await driver.register(user, password, 0)
        start = time.perf_counter()
        await arrived.wait()
        delays.append(1e3 * (time.perf_counter() - start))
        assert registrar.lookup(f"+{user}", loop.time())
    await other.mirror.close()
    await link.close()
    quantiles = statistics.quantiles(delays, n=100)
    print(
        f"in force on node b after the 200 on node a: p50 {quantiles[49]:.2f} ms, "
        f"p99 {quantiles[98]:.2f} ms, max {max(delays):.2f} ms ({len(delays)} registrations)"
    )


async def _measure(args: argparse.Namespace, directory: Path, url: str | None) -> None:
    phones = write_phones(directory, args.subscribers)
    credentials = _credentials(phones)
    async with AsyncExitStack() as stack:
        shared = None
        if url is not None:
            link, shared = await binding_node(url, "bench-a")
            stack.push_async_callback(link.close)
            stack.push_async_callback(shared.mirror.close)
        server, sink = await _server(directory, shared)
        tune_gc()  # as the server after its start-up
        driver = Driver(server, sink, phones, shared)
        if args.delay and url is not None:
            await _delays(driver, credentials[: args.delay], url)
            return
        await _rounds(args, driver, credentials)


async def _rounds(
    args: argparse.Namespace, driver: Driver, credentials: list[tuple[str, str]]
) -> None:
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
    parser.add_argument("--redis", action="store_true", help="bindings in a private Redis")
    parser.add_argument("--delay", type=int, default=0, help="with --redis: N delays to node b")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="register-path-")))
        url = stack.enter_context(RedisServer(tmp)).url if args.redis else None
        measured = _measure(args, tmp, url)
        try:
            import uvloop
        except ImportError:
            asyncio.run(measured)
        else:
            uvloop.run(measured)


if __name__ == "__main__":
    main()
