"""The ``callserver`` command (check, version, run's start-up errors) and SIGHUP reload rules."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from callserver import __version__
from callserver.app import Server
from callserver.config.settings import load_settings
from tests.default_plan import write_default_plan

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "callserver.yaml"

BAD = """\
sip:
  t1: -1
media:
  codecs: [G729]
calls:
  unknown_key: 1
"""


def callserver(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m callserver ARGS`` in the repository root, without CALLSERVER_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
    return subprocess.run(
        [sys.executable, "-m", "callserver", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**clean, **(env or {})},
    )


def test_check_shipped_config_is_ok() -> None:
    """`callserver check config/callserver.yaml` prints ok and exits 0."""
    result = callserver("check", "config/callserver.yaml")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["config/callserver.yaml: ok (settings)", "ok"]


def test_check_without_paths_checks_the_default_config() -> None:
    """`callserver check` alone checks config/callserver.yaml in the working directory."""
    result = callserver("check")
    assert (result.returncode, result.stdout.strip()) == (0, "ok")


def test_check_bad_file_lists_every_error(tmp_path: Path) -> None:
    """A file with three mistakes exits 1 with all three on stderr, each as file:line: field."""
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = callserver("check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2: sip.t1: ")
    assert lines[1].startswith(f"{path}:4: media.codecs.0: ")
    assert lines[2].startswith(f"{path}:6: calls.unknown_key: ")
    assert lines[3:] == ["3 error(s)"]


def test_check_several_files_reports_each(tmp_path: Path) -> None:
    """Every path given is checked; errors of all bad files are listed, good ones add none."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    worse = tmp_path / "worse.yaml"
    worse.write_text("- not a mapping\n")
    result = callserver("check", str(SHIPPED), str(bad), str(worse))
    assert result.returncode == 1
    assert f"{worse}:1: the file must hold a mapping of settings" in result.stderr
    assert result.stderr.count(str(bad)) == 3
    assert result.stderr.rstrip().endswith("4 error(s)")


def test_check_path_with_other_suffix_is_not_skipped(tmp_path: Path) -> None:
    """A named file is checked whatever its suffix, never swapped for the default config."""
    missing = tmp_path / "callserver.yaml.bak"
    result = callserver("check", str(missing))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{missing}: cannot read: ")
    assert "ok" not in result.stdout


def test_check_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    """Invalid YAML is one error line with the file and line, then the count."""
    path = tmp_path / "broken.yaml"
    path.write_text("sip:\n  user_agent: [unclosed\n")
    result = callserver("check", str(path))
    assert result.returncode == 1
    first, count = result.stderr.splitlines()
    assert first.startswith(f"{path}:3: not valid YAML: ")
    assert count == "1 error(s)"


def test_check_names_a_bad_environment_variable() -> None:
    """A bad CALLSERVER_* value fails the check, blamed on the variable, without a traceback."""
    result = callserver("check", "config/callserver.yaml", env={"CALLSERVER_SIP__T1": "soon"})
    assert result.returncode == 1
    assert result.stderr.startswith("environment CALLSERVER_SIP__T1: sip.t1: ")
    result = callserver("check", "config/callserver.yaml", env={"CALLSERVER_SIP__LISTEN": "[x"})
    assert result.returncode == 1
    assert result.stderr.startswith("environment: ")
    assert "Traceback" not in result.stderr


def test_version_prints_the_package_version() -> None:
    """`callserver version` prints the version the package and its metadata carry."""
    result = callserver("version")
    assert result.returncode == 0
    assert result.stdout == f"callserver {__version__}\n"
    assert __version__ == importlib.metadata.version("callserver")


def test_passwd_prints_the_lines_to_paste() -> None:
    """`callserver passwd USER REALM` reads the password from stdin and prints three YAML lines."""
    result = callserver("passwd", "38733100201", "callserver", stdin="phone-201-secret\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        'username: "38733100201"\n'
        "ha1_md5: 81e5a519d3e1b0a11f696813c26526cb\n"
        "ha1_sha256: c13658c5b0cb1b25993da0c06c9c81c8b693d55c702162e8d4f48c7f5aca6a54\n"
    )
    assert "phone-201-secret" not in result.stdout + result.stderr


def test_passwd_refuses_an_empty_password() -> None:
    """An empty standard input is refused with exit 2 and a message, and prints no lines."""
    result = callserver("passwd", "38733100201", "callserver", stdin="")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "callserver passwd: no password on standard input\n"


def test_run_with_bad_config_exits_1_listing_errors(tmp_path: Path) -> None:
    """`callserver run` on an invalid file exits 1 before binding, with every error on stderr."""
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = callserver("run", "--config", str(path))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 3
    assert all(line.startswith(f"{path}:") for line in result.stderr.splitlines())


def test_run_with_a_bad_centrex_file_exits_1_naming_its_line(tmp_path: Path) -> None:
    """A centrex.yaml whose group names an unknown customer stops the start with its error."""
    centrex = tmp_path / "centrex.yaml"
    centrex.write_text("groups:\n  g:\n    customer: nobody\n    numbers: ['+387 33 100 200']\n")
    config = tmp_path / "callserver.yaml"
    config.write_text(
        f"centrex: {centrex}\ndata_dir: {tmp_path / 'var'}\nsip:\n  listen: ['udp:127.0.0.1:0']\n"
    )
    result = callserver("run", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{centrex}:3: groups.g.customer: 'nobody' is not a customer of trunks.yaml"
    ]


def test_run_with_bad_listen_flag_exits_1() -> None:
    """A malformed --sip-listen is refused with a message, not a traceback."""
    result = callserver("run", "--config", str(SHIPPED), "--sip-listen", "::1:5060")
    assert result.returncode == 1
    assert "put an IPv6 host in brackets" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_exits_2() -> None:
    """argparse rejects an unknown subcommand with exit code 2."""
    assert callserver("serve").returncode == 2


# -- SIGHUP reload, in-process ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CALLSERVER_* variable of the caller's shell reaches in-process settings loads."""
    for name in list(os.environ):
        if name.upper().startswith("CALLSERVER_"):
            monkeypatch.delenv(name)


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "callserver.yaml"
    path.write_text(text)
    return path


async def test_reload_keeps_flag_overrides(tmp_path: Path) -> None:
    """After SIGHUP, values given as flags still beat the re-read file."""
    path = settings_file(tmp_path, "data_dir: from-file\ncalls:\n  drain_timeout: 30\n")
    overrides = {"data_dir": tmp_path / "flag", "sip": {"listen": ["udp:127.0.0.1:0"]}}
    server = Server(load_settings(path, overrides), path, overrides)
    settings_file(tmp_path, "data_dir: changed\ncalls:\n  drain_timeout: 2\n")
    with capture_logs() as logs:
        server.reload()
    assert server.settings.data_dir == tmp_path / "flag"
    assert server.settings.calls.drain_timeout == 2
    assert server.calls.settings is server.settings
    assert [entry["event"] for entry in logs] == ["config.reloaded"]  # dialplans: in slices, later


async def test_reload_applies_endpoint_settings(tmp_path: Path) -> None:
    """User-Agent, parser limits and session timers from the new file reach the endpoint."""
    path = settings_file(tmp_path, "sip:\n  listen: ['udp:127.0.0.1:0']\n")
    server = Server(load_settings(path), path)
    settings_file(
        tmp_path,
        "sip:\n  listen: ['udp:127.0.0.1:0']\n  user_agent: pbx-2\n  max_headers: 50\n"
        "  session_expires: 600\n",
    )
    server.reload()
    config = server.endpoint.config
    assert config.user_agent == "pbx-2"
    assert config.limits.max_headers == 50
    assert config.session_expires == 600


async def test_reload_keeps_start_up_settings_and_says_so(tmp_path: Path) -> None:
    """Listen addresses, SIP timers, RTP range, the media clock's ptime and logging stay as
    running; a warning names them, and other media settings (rtp_timeout) take effect."""
    path = settings_file(tmp_path, "sip:\n  listen: ['udp:127.0.0.1:0']\n")
    server = Server(load_settings(path), path)
    settings_file(
        tmp_path,
        "sip:\n  listen: ['udp:127.0.0.1:1']\n  t1: 0.25\n"
        "media:\n  rtp_port_min: 40000\n  rtp_port_max: 41000\n  ptime: 30\n  rtp_timeout: 9\n"
        "log_level: debug\n",
    )
    with capture_logs() as logs:
        server.reload()
    running = server.settings
    assert [str(a) for a in running.sip.listen] == ["udp:127.0.0.1:0"]
    assert running.sip.t1 == 0.5
    assert (running.media.rtp_port_min, running.media.rtp_port_max) == (20000, 30000)
    assert running.media.ptime == 20
    assert running.media.rtp_timeout == 9 and server.media.settings.rtp_timeout == 9
    assert running.log_level == "info"
    assert server.endpoint.config.timers.t1 == 0.5
    warning = next(entry for entry in logs if entry["event"] == "config.restart_needed")
    assert warning["settings"] == [
        "sip.listen",
        "sip.t1",
        "media.rtp_port_min",
        "media.rtp_port_max",
        "media.ptime",
        "log_level",
    ]


async def test_reload_of_a_bad_file_keeps_the_running_settings(tmp_path: Path) -> None:
    """A bad settings file on SIGHUP logs every error and changes no setting."""
    path = settings_file(tmp_path, "sip:\n  listen: ['udp:127.0.0.1:0']\n")
    server = Server(load_settings(path), path)
    before = server.settings
    settings_file(tmp_path, "calls:\n  drain_timeout: -1\n  max_calls: 0\n")
    with capture_logs() as logs:
        server.reload()
    assert server.settings is before
    (entry,) = logs  # the dialplans and blacklist are separate files: they still reload
    assert entry["event"] == "config.reload_failed"
    assert server.background.tasks  # the dialplans are being compiled, a file per turn
    assert entry["log_level"] == "error"
    assert [e.split(": ")[1] for e in entry["errors"]] == [
        "calls.drain_timeout",
        "calls.max_calls",
    ]


# -- prompts: `check` covers the prompts directory, `prompts synth` speaks the texts -----------


def test_check_lists_prompt_errors_and_exits_1(tmp_path: Path) -> None:
    """`callserver check` decodes the configured prompts and lists each bad or missing one."""
    prompts = tmp_path / "prompts"
    (prompts / "en").mkdir(parents=True)
    (prompts / "en" / "greeting.wav").write_bytes(b"")
    config = settings_file(tmp_path, f"media:\n  prompts_dir: {prompts}\n")
    result = callserver("check", str(config))
    assert (result.returncode, result.stdout) == (1, "")
    lines = result.stderr.splitlines()
    assert lines[0] == f"{prompts / 'en' / 'greeting.wav'}: empty file"
    assert f"{prompts / 'en'}: missing prompt 'goodbye'" in lines
    assert f"{prompts / 'en'}: missing prompt 'greeting'" not in lines
    assert lines[-1] == f"{len(lines) - 1} error(s)"


def test_prompts_synth_writes_an_8k_mono_wav(tmp_path: Path) -> None:
    """`callserver prompts synth` speaks a text file into an 8 kHz mono 16-bit WAV at -3 dBFS."""
    assert shutil.which("espeak-ng"), "espeak-ng is missing: apt-get install espeak-ng"
    (tmp_path / "en.txt").write_text("# test\nhello: Hello, and welcome.\n")
    args = ("prompts", "synth", "--prompts-dir", str(tmp_path), "--lang", "en", "--only", "hello")
    result = callserver(*args)
    assert (result.returncode, result.stderr) == (0, "")
    path = tmp_path / "en" / "hello.wav"
    assert result.stdout.startswith(f"{path} ")
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert 0.5 < len(samples) / 8000 < 5
    assert 20 * np.log10(np.abs(samples.astype(np.int32)).max() / 32768) == pytest.approx(
        -3, abs=0.1
    )
    assert [p.name for p in (tmp_path / "en").iterdir()] == ["hello.wav"]  # no temporary left


def test_prompts_synth_without_espeak_says_how_to_install_it(tmp_path: Path) -> None:
    """With espeak-ng not on PATH, synth exits 1 with the apt-get command that installs it."""
    (tmp_path / "en.txt").write_text("hello: Hello.\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    result = callserver(
        "prompts", "synth", "--prompts-dir", str(tmp_path), env={"PATH": str(empty)}
    )
    assert result.returncode == 1
    assert "apt-get install espeak-ng" in result.stderr
    assert "Traceback" not in result.stderr


def test_prompts_synth_bad_text_file_names_the_line(tmp_path: Path) -> None:
    """A malformed text line fails synth with file:line, before anything is spoken."""
    (tmp_path / "de.txt").write_text("greeting Willkommen.\n")
    result = callserver("prompts", "synth", "--prompts-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"callserver: {tmp_path / 'de.txt'}:1: expected 'name: text'")
    assert not (tmp_path / "de").exists()


def test_prompts_synth_writes_the_music_on_hold_without_espeak(tmp_path: Path) -> None:
    """`--only moh` writes prompts/moh/chords.wav, the generated 8 s loop, with no text file
    and no espeak-ng."""
    empty = tmp_path / "bin"
    empty.mkdir()
    args = ("prompts", "synth", "--prompts-dir", str(tmp_path), "--only", "moh")
    result = callserver(*args, env={"PATH": str(empty)})
    path = tmp_path / "moh" / "chords.wav"
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path} 8.00 s\n", "")
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 1, 64000)


def test_prompts_without_a_tool_exits_2() -> None:
    """`callserver prompts` needs a subcommand; argparse exits 2."""
    assert callserver("prompts").returncode == 2


@pytest.mark.parametrize(
    ("key", "text", "first_error"),
    [
        ("trunks", "trunks:\n  pbx:\n    match: [not-an-address]\n", ":3: trunks.pbx.match: "),
        ("tariffs", "vat_rate: lots\n", ":"),
    ],
)
def test_check_lists_operator_file_errors(
    tmp_path: Path, key: str, text: str, first_error: str
) -> None:
    """`callserver check` validates the trunks and tariffs files the settings name."""
    operator_file = tmp_path / f"{key}.yaml"
    operator_file.write_text(text)
    config = settings_file(tmp_path, f"{key}: {operator_file}\n")
    result = callserver("check", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(f"{operator_file}{first_error}")


def test_cdr_export_and_stats_commands(tmp_path: Path) -> None:
    """`callserver cdr export` writes the CSV header of an empty store; a bad --since exits 1."""
    data = str(tmp_path / "var")
    export = callserver("cdr", "export", "--data-dir", data, "--format", "csv")
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith('"accountcode","src","dst"')
    stats = callserver("cdr", "stats", "--data-dir", data)
    assert stats.returncode == 0 and stats.stdout.startswith("calls 0")
    bad = callserver("cdr", "export", "--data-dir", data, "--since", "yesterday-ish")
    assert bad.returncode == 1 and "ISO 8601" in bad.stderr


def test_check_lists_dialplan_and_blacklist_errors(tmp_path: Path) -> None:
    """`callserver check` reports a premium plan lengthening its 180 s cap and a bad blacklist."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    premium = plans / "38790291100.yaml"
    premium.write_text("max_duration: 5m\nsteps:\n  hello:\n    play: greeting\n")
    write_default_plan(plans)
    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text("+38761123456\n06x12\n")
    config = settings_file(tmp_path, f"dialplans: {plans}\nblacklist: {blacklist}\n")
    result = callserver("check", str(config))
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[-1] == "2 error(s)"
    assert errors[0].startswith(f"{blacklist}:2: '06x12' is not a number or prefix")
    assert errors[1].startswith(f"{premium}:1: max_duration: max_duration 300")
    assert "180" in errors[1]


def test_check_reports_three_dialplan_mistakes_with_file_and_line(tmp_path: Path) -> None:
    """A dialplan with three mistakes: `callserver check` lists all three, file:line first."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    plan = plans / "38733100200.yaml"
    plan.write_text(
        "steps:\n"
        "  welcome:\n"
        "    play: greetng\n"  # 3: no such prompt
        "  main_menu:\n"
        "    menu: menu\n"
        "    options: {1: info, 2: sales}\n"  # 6: no step 'sales'
        "  info:\n"
        "    play: goodbye\n"
        "    barge_in: maybe\n"  # 9: not a boolean
    )
    write_default_plan(plans)
    config = settings_file(tmp_path, f"dialplans: {plans}\n")
    result = callserver("check", str(config))
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[-1] == "3 error(s)"
    assert [line.split(": ")[0:2] for line in errors[:3]] == [
        [f"{plan}:3", "steps.welcome.play"],
        [f"{plan}:6", "steps.main_menu.options.2"],
        [f"{plan}:9", "steps.info.barge_in"],
    ]


async def test_reload_replaces_centrex_and_keeps_it_on_a_bad_file(tmp_path: Path) -> None:
    """SIGHUP loads a changed centrex.yaml (admission too); a bad one is logged and not used."""
    centrex = tmp_path / "centrex.yaml"
    shipped = (ROOT / "config" / "centrex.yaml").read_text()
    centrex.write_text(shipped)
    path = settings_file(
        tmp_path,
        "sip:\n  listen: ['udp:127.0.0.1:0']\n"
        f"trunks: {ROOT / 'config' / 'trunks.yaml'}\ncentrex: {centrex}\n"
        f"dialplans: {tmp_path / 'plans'}\n",
    )
    server = Server(load_settings(path), path)
    assert sorted(server.centrex.by_number)[-1] == "+38733100203"
    customer = server.admission.table.config.customers["callcentre-demo"]
    assert customer.numbers[0] == "+38733100200"  # the group's block, written only there
    centrex.write_text(shipped.replace('"+387 33 100 203"', '"+387 33 100 204"'))
    server.reload()
    assert sorted(server.centrex.by_number)[-1] == "+38733100204"
    assert server.admission.centrex is server.centrex  # phones' INVITEs see the new file
    account = server.admission.auth.accounts("38733100201")
    assert account is not None and account.aor == "+38733100201"
    before = server.centrex
    centrex.write_text(shipped.replace("customer: callcentre-demo", "customer: nobody"))
    with capture_logs() as logs:
        server.reload()
    assert server.centrex is before
    assert server.admission.centrex is before
    (entry,) = logs
    assert entry["event"] == "config.reload_failed"
    assert entry["errors"] == [
        f"{centrex}:10: groups.callcentre-demo-office.customer: 'nobody' is not a customer "
        "of trunks.yaml"
    ]
