"""A browser's side of the agent softphone, in Python: aiortc's peer connection over the
admin server's /api/softphone WebSocket, as the page's JavaScript does it.

Its microphone is a steady tone (``ToneTrack``); what it hears is kept as 8 kHz samples
(``heard``); its ICE host candidates are on 127.0.0.1 only (``callserver.softphone.ice``), as
the server's are in the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from callserver.media.tones import sine
from callserver.softphone.ice import host_candidates_on, rtc_configuration
from callserver.softphone.track import FRAME_SAMPLES, ServerAudio, browser_audio

HOST = "127.0.0.1"


class ToneTrack(ServerAudio):
    """A microphone playing ``frequency`` Hz without end (-10 dBFS, 8 kHz)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, frequency: float) -> None:
        super().__init__(loop)
        self._tone = sine(frequency, 1000)
        self._at = 0
        self.resume()

    async def recv(self) -> av.AudioFrame:
        """The tone's next 20 ms."""
        chunk = self._tone[self._at : self._at + FRAME_SAMPLES]
        self._at = (self._at + FRAME_SAMPLES) % len(self._tone)
        self.feed(chunk)
        return await super().recv()


class SoftphoneClient:
    """One softphone: ``connect`` says hello, ``start_audio`` negotiates WebRTC; ``messages``
    are what the server said, in order."""

    def __init__(self, admin_port: int, tone: float) -> None:
        self.url = f"http://{HOST}:{admin_port}/api/softphone"
        self.tone = tone
        self.messages: list[dict[str, Any]] = []
        self.heard: list[npt.NDArray[np.int16]] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pc: RTCPeerConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._arrived = asyncio.Event()

    async def connect(self, token: str, agent: str) -> dict[str, Any]:
        """Open the socket and say hello; the server's first answer."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        await self._ws.send_json({"type": "hello", "token": token, "agent": agent})
        self._tasks.append(asyncio.get_running_loop().create_task(self._read()))
        return await self.wait_for(lambda m: True)

    async def send(self, message: dict[str, Any]) -> None:
        """One message to the server."""
        assert self._ws is not None
        await self._ws.send_json(message)

    async def start_audio(self) -> str:
        """Offer the tone and take the server's answer (returned: its SDP); its audio is kept
        in ``heard``."""
        loop = asyncio.get_running_loop()
        self._pc = pc = RTCPeerConnection(rtc_configuration())
        pc.addTrack(ToneTrack(loop, self.tone))
        pc.on("track", self._track)
        with host_candidates_on(HOST):
            await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await self.wait_for(lambda m: m["type"] == "answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        return str(answer["sdp"])

    def _track(self, track: MediaStreamTrack) -> None:
        task = asyncio.get_running_loop().create_task(browser_audio(track, self.heard.append))
        self._tasks.append(task)

    async def wait_for(self, wanted: Any, within: float = 15.0) -> dict[str, Any]:
        """The first message (oldest first, not yet consumed) ``wanted`` accepts."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for message in self.messages:
                if not message.get("_seen") and wanted(message):
                    message["_seen"] = True
                    return message
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no such message; the server said {self.messages}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def heard_since(self, start: int) -> npt.NDArray[np.int16]:
        """The samples heard from chunk ``start`` on."""
        chunks = self.heard[start:]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(frame.data))
                self._arrived.set()
        self.messages.append({"type": "closed", "code": self._ws.close_code})
        self._arrived.set()

    async def close(self) -> None:
        """Close the peer connection and the socket (again: nothing)."""
        if self._pc is not None:
            await self._pc.close()
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            await self._session.close()
        self._pc = self._ws = self._session = None
