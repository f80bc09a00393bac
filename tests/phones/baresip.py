"""baresip as a SIP phone for tests: its own config dir, a pty on its stdio console, waits on
its output for call and registration states, and the WAV files its sndfile module writes.

The phone listens on 127.0.0.1 only (SIP on one port for UDP and TCP, RTP on a small range),
plays the WAV file it is given as its microphone (the ``aufile`` source), answers every call
at once (``answermode=auto``, unless its account says ``manual``) and writes what it receives
and sends to ``<workdir>/audio/dump-*-dec.wav`` and ``-enc.wav``. Use it as a context manager,
so the process is stopped and its ports freed however the test ends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import pytest

from tests.e2e.conftest import HOST, free_port
from tests.phones.audio import read_wav

MODULE_PATH = Path("/usr/lib/baresip/modules")
INSTALL_HINT = (
    "baresip not found: run `make test` (installs baresip-core) or apt-get install baresip-core"
)

# A port found free can be taken by another process before baresip binds it.
_LISTEN_ATTEMPTS = 3

# What the console prints for each state (baresip 1.0's menu and call modules).
STATES = {
    "ready": r"baresip is ready\.",
    "registered": r"\{\d+/(?:UDP|TCP)/v4\} 200 ",
    "register_failed": r"reg: [^\n]*: (?:Register: |\d{3} )",
    "incoming": r"(?:Incoming call from|answering call on line)",
    "established": r"Call established:",
    "closed": r"Call with .* terminated",
    "session_closed": r"session closed: [^\r\n]*",
}


def baresip_path() -> str:
    """The baresip binary, or the test fails with the install hint (never skips)."""
    path = shutil.which("baresip")
    if path is None:
        pytest.fail(INSTALL_HINT)
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """The phone's one account: ``registrar`` is (host, port) or None for no registration;
    ``answermode`` ``auto`` answers every call at once, ``manual`` lets it ring; ``mwi``
    subscribes to the account's message-summary (RFC 3842) once registered."""

    user: str = "phone"
    registrar: tuple[str, int] | None = None
    transport: str = "udp"
    auth_user: str | None = None
    password: str | None = None
    regint: int = 600
    answermode: str = "auto"
    mwi: bool = False


def _account_line(account: Account, sip_port: int) -> str:
    domain = f"{account.registrar[0]}:{account.registrar[1]}" if account.registrar else None
    params = [
        f"regint={account.regint if domain else 0}",
        f"answermode={account.answermode}",
        "audio_codecs=pcmu,pcma",
        f"mwi={'yes' if account.mwi else 'no'}",
    ]
    if account.auth_user:
        params.append(f"auth_user={account.auth_user}")
    if account.password:
        params.append(f"auth_pass={account.password}")
    host = domain or f"{HOST}:{sip_port}"
    return f"<sip:{account.user}@{host};transport={account.transport}>;" + ";".join(params)


def _config(
    sip_port: int, rtp_port: int, audio: Path, snd_path: Path, *, max_calls: int, mwi: bool
) -> str:
    lines = {
        "module_path": str(MODULE_PATH),
        "poll_method": "epoll",
        "sip_listen": f"{HOST}:{sip_port}",
        "net_interface": HOST,
        "call_local_timeout": "30",
        "call_max_calls": str(max_calls),
        "audio_player": "aubridge,player",
        "audio_alert": "aubridge,alert",
        "audio_source": f"aufile,{audio}",
        "rtp_ports": f"{rtp_port}-{rtp_port + 9}",
        "rtcp_mux": "no",
        "snd_path": str(snd_path),
    }
    modules = ["stdio", "g711", "aufile", "aubridge", "sndfile"]
    text = [f"{key}\t{value}" for key, value in lines.items()]
    text += [f"module\t{name}.so" for name in modules]
    text += ["module_tmp\taccount.so", "module_app\tmenu.so"]
    text += ["module_app\tmwi.so"] if mwi else []
    return "\n".join(text) + "\n"


class Baresip:
    """One baresip process with a pty on its console; see the module docstring.
    ``sip_trace`` prints every SIP message on the console; ``max_calls``: calls the phone
    takes at once (baresip answers 486 Busy Here to one more)."""

    def __init__(
        self,
        workdir: Path,
        audio: Path,
        account: Account | None = None,
        *,
        sip_trace: bool = False,
        max_calls: int = 4,
    ) -> None:
        self.workdir = workdir
        self.sip_trace = sip_trace
        self.max_calls = max_calls
        self.account = account or Account()
        self.sip_port = free_port()
        self.rtp_port = free_port(both=False)
        self.snd_path = workdir / "audio"
        self._output = ""
        self._cursor = 0
        self._changed = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._master = -1
        self._reader: threading.Thread | None = None
        self._audio = audio
        self._write_config(audio)

    @property
    def uri(self) -> str:
        """The SIP URI that reaches this phone directly (no registrar)."""
        return f"sip:{self.account.user}@{HOST}:{self.sip_port};transport={self.account.transport}"

    def _write_config(self, audio: Path) -> None:
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        self.snd_path.mkdir(parents=True, exist_ok=True)
        config = _config(
            self.sip_port,
            self.rtp_port,
            audio,
            self.snd_path,
            max_calls=self.max_calls,
            mwi=self.account.mwi,
        )
        (conf / "config").write_text(config)
        # An MWI account is added once baresip runs: see _add_mwi_account.
        account = "" if self.account.mwi else _account_line(self.account, self.sip_port) + "\n"
        (conf / "accounts").write_text(account)
        (conf / "contacts").write_text("")

    def start(self, timeout: float = 5.0) -> Baresip:
        """Start baresip on a new pty and wait until it is ready; if another process took
        its SIP port meanwhile, try again on new free ports."""
        for _ in range(_LISTEN_ATTEMPTS - 1):
            try:
                return self._start_once(timeout)
            except AssertionError:
                if "Address already in use" not in self.output:
                    raise
                self.stop()
                self.sip_port, self.rtp_port = free_port(), free_port(both=False)
                self._write_config(self._audio)
        return self._start_once(timeout)

    def _start_once(self, timeout: float) -> Baresip:
        master, slave = os.openpty()
        env = {**os.environ, "HOME": str(self.workdir), "TERM": "dumb"}
        with self._changed:
            self._output, self._cursor = "", 0
        self._proc = subprocess.Popen(
            [baresip_path(), "-f", str(self.workdir / "conf"), *(["-s"] if self.sip_trace else [])],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for("ready", timeout)
        if self.account.mwi:
            self._add_mwi_account()
        return self

    def _add_mwi_account(self) -> None:
        """Add the account from the console (``/uanew``), after the mwi module's start timer.

        baresip 1.0's mwi module subscribes, from a 1 ms timer started when it loads, for every
        subscription it already has, appending to the list it walks: if the account's REGISTER
        is answered before that timer fires, the walk never ends and the phone loops sending
        SUBSCRIBEs. An account added well after the start has not registered when it fires."""
        time.sleep(0.05)
        self.send(f"/uanew {_account_line(self.account, self.sip_port)}\n")

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                chunk = b""
            with self._changed:
                if not chunk:
                    self._changed.notify_all()
                    return
                self._output += chunk.decode(errors="replace")
                self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything the console printed so far."""
        with self._changed:
            return self._output

    def wait_for(self, state: str, timeout: float = 5.0) -> str:
        """Wait for the next console line showing ``state`` (a key of STATES) after the last
        one waited for; return the matched text, or fail with the console's output."""
        pattern = re.compile(STATES.get(state, state))
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = pattern.search(self._output, self._cursor)
                if found:
                    self._cursor = found.end()
                    return found.group(0)
                left = deadline - time.monotonic()
                if left <= 0 or (self._proc is not None and self._proc.poll() is not None):
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(f"baresip: no {state!r} in {timeout} s:\n{self.output[-3000:]}")

    def send(self, keys: str) -> None:
        """Type ``keys`` on the console (``/dial URI\\n``, ``b``, digits)."""
        os.write(self._master, keys.encode())

    def dial(self, uri: str) -> None:
        """Call ``uri``."""
        self.send(f"/dial {uri}\n")

    def hang_up(self) -> None:
        """Hang up the current call."""
        self.send("b")

    def send_digits(self, digits: str) -> None:
        """Press ``digits`` during a call (sent as RFC 4733 events)."""
        for digit in digits:
            self.send(digit)
            time.sleep(0.2)

    def traced(self, method: str) -> list[tuple[str, str]]:
        """The ``method`` requests the phone sent or received, from its SIP trace (started
        with ``sip_trace``): ``("TRANSPORT source -> destination", request up to its
        Content-Length)`` each, in order."""
        pattern = re.compile(rf"(\w+ \S+ -> \S+)\s+({method} sip:.*?\nContent-Length)", re.DOTALL)
        return [(flow, text.replace("\r", "")) for flow, text in pattern.findall(self.output)]

    def received_audio(self) -> npt.NDArray[np.int16]:
        """Samples of the last call's received audio (sndfile's ``-dec.wav``), 8 kHz mono."""
        return read_wav(self._dump("dec"))

    def sent_audio(self) -> npt.NDArray[np.int16]:
        """Samples of the last call's sent audio (sndfile's ``-enc.wav``), 8 kHz mono."""
        return read_wav(self._dump("enc"))

    def _dump(self, kind: str) -> Path:
        files = sorted(self.snd_path.glob(f"dump-*-{kind}.wav"))
        assert files, f"baresip wrote no {kind} audio in {self.snd_path}"
        return files[-1]

    def kill(self, timeout: float = 3.0) -> None:
        """Kill baresip at once (SIGKILL), as a phone that loses power: nothing is sent, the
        kernel closes its sockets (a TCP peer sees the connection close)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout)

    def stop(self, timeout: float = 3.0) -> None:
        """Quit baresip (``q``), kill it if it lingers, and close the pty."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self.send("q")
                proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        self._proc = None

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
