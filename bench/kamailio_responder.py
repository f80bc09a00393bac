"""bench/kamailio_responder: Kamailio as a stateless responder, the reference for bench/sip_cps.

Every request but ACK gets ``sl_send_reply("200", "OK")`` (the sl module: no transaction, no
dialog), which is all SIPp's uac scenario needs (INVITE/200/ACK/BYE/200); an ACK gets nothing
(RFC 3261 §17.1.1.3). One UDP worker (``children=1``) on a free loopback port, no TCP, no
aliases: with ``auto_aliases`` every loopback port would count as Kamailio's own. Kamailio
forks its worker and timer processes from the main one; they all share its session, so their
CPU is summed by session. Started as ``kamailio -f CFG -DD -E`` (no daemon, log to stderr).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import HOST, free_port, pinned, session_cpu_seconds, wait_answering

CONFIG = """#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=1
disable_tcp=yes
auto_aliases=no
listen=udp:{host}:{port}

loadmodule "sl.so"

request_route {{
    if (method == "ACK") {{
        exit;
    }}
    sl_send_reply("200", "OK");
    exit;
}}
"""

INSTALL_HINT = "kamailio not found: run 'make kamailio' (Debian: apt-get install kamailio)"


@dataclass
class Kamailio:
    """A running Kamailio and the port it answers on."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        """CPU seconds of all its processes (the session its main process leads)."""
        return session_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM to the main process, which ends its children; wait."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_kamailio(workdir: Path, core: str) -> Kamailio:
    """Kamailio with CONFIG on a free port of 127.0.0.1, pinned to ``core`` with its children;
    returned once it answers OPTIONS. RuntimeError with the install hint when it is missing."""
    binary = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "kamailio.cfg"
    config.write_text(CONFIG.format(host=HOST, port=port))
    log = workdir / "kamailio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned([binary, "-f", str(config), "-DD", "-E"], core),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its processes' session id is its pid
        )
    kamailio = Kamailio(proc, port, log)
    try:
        wait_answering(port, 10, "kamailio")
    except RuntimeError as exc:
        kamailio.stop()
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{exc}; its log ends: {' | '.join(tail)}") from None
    return kamailio
