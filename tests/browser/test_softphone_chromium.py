"""The agent softphone in real headless Chromium: the portal's softphone page, its fake
microphone playing a 1000 Hz tone from a WAV file, connects to a real `callserver run`, logs
agent 201 in, and answers a SIPp caller's queue call: G.711 is negotiated with the browser,
the caller hears the browser's tone and the page hears the caller's 440 Hz; hold silences the
agent for the caller and the page's hang-up sends BYE to the caller."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from callserver.media.tones import sine
from tests.browser.chromium import Browser, Start
from tests.e2e.conftest import HOST
from tests.e2e.rooms import louder, received_samples
from tests.e2e.rtp_party import tone_party
from tests.e2e.softphone_calls import ACME, admin_port, queue_caller, softphone_server
from tests.e2e.transfers import reap, wait_event

pytestmark = pytest.mark.e2e

CALLER_TONE, BROWSER_TONE = 440.0, 1000.0
WEBRTC = (
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",  # host candidates on 127.0.0.1
    "--autoplay-policy=no-user-gesture-required",
)
SPECTRUM = """
const done = arguments[arguments.length - 1];
const context = new AudioContext();
const source = context.createMediaStreamSource(document.getElementById("remote").srcObject);
const analyser = context.createAnalyser();
analyser.fftSize = 8192;
source.connect(analyser);
setTimeout(() => {
  const data = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(data);
  const at = (f) => data[Math.round(f * analyser.fftSize / context.sampleRate)];
  done({caller: at(440), browser: at(1000)});
  context.close();
}, 1500);
"""
CODECS = """
const done = arguments[arguments.length - 1];
softphone.state.pc.getStats().then((report) => {
  const codecs = {}, used = [];
  report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
  report.forEach((s) => {
    if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
      used.push([s.type, codecs[s.codecId], s.packetsReceived || s.packetsSent]);
    }
  });
  done(used);
});
"""


def tone_wav(path: Path) -> Path:
    """A 1000 Hz tone, 10 s, 16-bit mono 48 kHz: the fake microphone's sound."""
    samples = np.tile(sine(BROWSER_TONE, 1000, rate=48000), 10)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48000)
        wav.writeframes(samples.tobytes())
    return path


def _text(driver: webdriver.Chrome, element: str, wanted: str, within: float = 15.0) -> None:
    """Waits until the element's text starts with ``wanted``."""
    try:
        WebDriverWait(driver, within).until(
            lambda d: d.find_element(By.ID, element).text.startswith(wanted)
        )
    except Exception as exc:
        seen = {i: driver.find_element(By.ID, i).text for i in ("registration", "media", "error")}
        raise AssertionError(f"#{element} never read {wanted!r}: {seen}") from exc


def test_an_agent_answers_a_queue_call_in_chromium(
    sipp: str, tmp_path: Path, chromium: Start
) -> None:
    """Connect, log in, ring, answer (PCMU both ways, each tone heard), hold, hang up."""
    server = softphone_server(tmp_path)
    caller_rtp = tone_party(CALLER_TONE)
    procs: list[subprocess.Popen[str]] = []
    try:
        wav = tone_wav(tmp_path / "tone.wav")
        driver = chromium(*WEBRTC, f"--use-file-for-fake-audio-capture={wav}")
        driver.get(f"http://{HOST}:{admin_port(server)}/portal/softphone")
        driver.find_element(By.ID, "token").send_keys(ACME)
        driver.find_element(By.ID, "agent").send_keys("201")
        driver.find_element(By.ID, "connect").click()
        _text(driver, "registration", "registered")
        _text(driver, "media", "connected")
        driver.find_element(By.ID, "login").click()
        _text(driver, "agent-state", "available")

        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp))
        _text(driver, "call-state", "ringing", within=20)
        assert driver.find_element(By.ID, "incoming").text == "Incoming: Support: +38761000001"
        driver.find_element(By.ID, "accept").click()
        _text(driver, "call-state", "talking")
        Browser(driver, tmp_path, "softphone").screenshot("talking")
        caller_rtp.send_to(int(str(wait_event(server, "call.answered")["rtp_port"])))

        time.sleep(1.0)
        caller_from = len(caller_rtp.received)
        heard = driver.execute_async_script(SPECTRUM)
        caller_side = received_samples(caller_rtp, caller_from)
        assert len(caller_side) >= 8000
        assert louder(caller_side, BROWSER_TONE, CALLER_TONE), "the caller does not hear the page"
        assert heard["caller"] > heard["browser"] + 20, (
            f"the page does not hear the caller: {heard}"
        )
        used = driver.execute_async_script(CODECS)
        assert {codec for _, codec, _ in used} == {"audio/PCMU"}, used
        assert all(packets > 0 for _, _, packets in used), used

        driver.find_element(By.ID, "hold").click()
        _text(driver, "call-state", "held")
        time.sleep(0.5)
        held_from = len(caller_rtp.received)
        time.sleep(1.0)
        assert not louder(received_samples(caller_rtp, held_from), BROWSER_TONE, CALLER_TONE)

        driver.find_element(By.ID, "hangup").click()
        _text(driver, "call-state", "ended")
        out, _ = procs[0].communicate(timeout=20)
        assert procs[0].returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])
    finally:
        reap(procs)
        server.stop()
        caller_rtp.close()
