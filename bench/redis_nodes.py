"""bench/redis_nodes: a private redis-server for the in-process benchmarks of several nodes,
and the shared binding store of a node on it (docs/scaling.md "Registrations and settings").

``RedisServer`` runs ``redis-server`` (Debian's, `make redis`) on a free loopback port in a
temp dir, nothing saved, stopped on exit. ``binding_node`` opens a node's ``RedisBindingStore``
on it: the store ``Registration.open`` takes, or with a bare registrar a second node whose
registrar the changes of the first reach.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from harness import HOST, free_port

from callserver.cluster.bindings import RedisBindingStore
from callserver.cluster.link import RedisLink


class RedisServer:
    """redis-server on a free port of 127.0.0.1, files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server not found: make redis (apt-get install redis-server)")
        self.port = free_port()
        command = [binary, "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", str(directory)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def __enter__(self) -> RedisServer:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            )
            if done.stdout.strip() == b"PONG":
                return self
            time.sleep(0.05)
        raise SystemExit("redis-server did not answer within 10 s")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def binding_node(url: str, node: str) -> tuple[RedisLink, RedisBindingStore]:
    """Node ``node``'s link and binding store on ``url``, everything in Redis read."""
    link = RedisLink(url)
    store = RedisBindingStore(link, node=node, holder=f"{node}/1", loop=asyncio.get_running_loop())
    await store.open()
    return link, store
