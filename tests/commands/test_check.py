"""`callserver check` on any mix of operator files, known by where they sit and what they hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from callserver.commands.check import check, kind_of
from callserver.config.settings import Settings
from tests.test_cli import ROOT, callserver

SHIPPED_PLAN = ROOT / "dialplans" / "38733100200.yaml"


def _settings(tmp_path: Path, text: str = "") -> Path:
    """A settings file in ``tmp_path`` with the shipped prompts, trunks and tariffs."""
    path = tmp_path / "callserver.yaml"
    path.write_text(
        f"media:\n  prompts_dir: {ROOT / 'prompts'}\n"
        f"trunks: {ROOT / 'config' / 'trunks.yaml'}\n"
        f"tariffs: {ROOT / 'config' / 'tariffs.yaml'}\n"
        f"dialplans: {tmp_path / 'none'}\n"
        f"blacklist: {tmp_path / 'none.txt'}\n" + text
    )
    return path


def test_the_shipped_dialplan_named_alone_is_ok() -> None:
    """`callserver check dialplans/38733100200.yaml` checks a dialplan, not settings keys."""
    result = callserver("check", "dialplans/38733100200.yaml")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["dialplans/38733100200.yaml: ok (dialplan)", "ok"]


def test_the_dialplans_directory_is_ok() -> None:
    """`callserver check dialplans` checks every plan in the directory (no "Is a directory")."""
    result = callserver("check", "dialplans")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["dialplans: ok (dialplans)", "ok"]


def test_a_dialplans_directory_without_a_default_plan_gets_a_warning(tmp_path: Path) -> None:
    """No default.yaml: the check still passes and warns that other numbers get 404."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    shutil.copy(SHIPPED_PLAN, plans)
    result = callserver("check", str(plans))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"warning: {plans}/default.yaml: no default plan: a called number without a dialplan "
        "of its own is refused with 404 (CDR end_reason no_route)"
    ]
    assert result.stdout.splitlines() == [f"{plans}: ok (dialplans)", "ok"]


def test_a_mix_of_every_kind_prints_ok_for_each() -> None:
    """Settings, a dialplan, a directory, trunks, tariffs and the blacklist in one command."""
    paths = [
        "config/callserver.yaml",
        "dialplans/38780050050.yaml",
        "dialplans",
        "config/trunks.yaml",
        "config/tariffs.yaml",
        "config/blacklist.txt",
    ]
    result = callserver("check", *paths)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "config/callserver.yaml: ok (settings)",
        "dialplans/38780050050.yaml: ok (dialplan)",
        "dialplans: ok (dialplans)",
        "config/trunks.yaml: ok (trunks)",
        "config/tariffs.yaml: ok (tariffs)",
        "config/blacklist.txt: ok (blacklist)",
        "ok",
    ]


def test_a_bad_dialplan_among_good_files_lists_its_errors_with_file_and_line(
    tmp_path: Path,
) -> None:
    """The errors of the bad file are listed file:line: field; the good ones print ok."""
    bad = tmp_path / "38733100201.yaml"
    bad.write_text("steps:\n  welcome:\n    play: greetng\n")
    result = callserver("check", "config/trunks.yaml", str(bad))
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["config/trunks.yaml: ok (trunks)"]
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:3: steps.welcome.play: ")
    assert lines[-1] == "1 error(s)"


def test_a_dialplan_is_checked_against_the_tariffs_in_force(tmp_path: Path) -> None:
    """A premium plan alone is refused for lengthening the 180 s cap of the shipped tariffs."""
    plan = tmp_path / "38790291100.yaml"
    plan.write_text("max_duration: 5m\nsteps:\n  hello:\n    play: greeting\n")
    [result] = check([plan], _settings(tmp_path))[1:]
    assert result.kind == "dialplan"
    assert len(result.errors) == 1
    assert result.errors[0].startswith(f"{plan}:1: max_duration: ")
    assert "180" in result.errors[0]


def test_a_directory_of_other_files_is_checked_file_by_file(tmp_path: Path) -> None:
    """A directory not of dialplans: each operator file in it is known on its own."""
    folder = tmp_path / "etc"
    folder.mkdir()
    shutil.copy(ROOT / "config" / "trunks.yaml", folder / "trunks.yaml")
    shutil.copy(SHIPPED_PLAN, folder / "38733100200.yaml")
    (folder / "blocked.txt").write_text("+38761\n06x\n")
    (folder / "notes.md").write_text("not an operator file\n")
    results = check([folder], _settings(tmp_path))[1:]
    assert [(r.path.name if r.path else None, r.kind) for r in results] == [
        ("38733100200.yaml", "dialplan"),
        ("blocked.txt", "blacklist"),
        ("trunks.yaml", "trunks"),
    ]
    assert [len(r.errors) for r in results] == [0, 1, 0]


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("acme.yaml", "steps:\n  a:\n    hangup: normal\n", "dialplan"),
        ("carrier.yaml", "trunks:\n  pbx:\n    match: [192.0.2.1]\n", "trunks"),
        ("prices.yaml", "vat_rate: 0.17\nclasses: {}\n", "tariffs"),
        ("phones.yaml", "groups: {}\n", "centrex"),
        ("node.yaml", "sip:\n  t1: 0.5\ntrunks: config/trunks.yaml\n", "settings"),
        ("38733100299.yml", "- a list\n", "dialplan"),
        ("empty.yaml", "", "settings"),
    ],
)
def test_a_file_is_known_by_what_it_holds(tmp_path: Path, name: str, text: str, kind: str) -> None:
    """Without a telling name or place, the top-level keys say what the file is."""
    path = tmp_path / name
    path.write_text(text)
    assert kind_of(path, Settings.model_construct()) == kind


def test_a_file_in_a_dialplans_directory_is_a_dialplan_whatever_it_holds(tmp_path: Path) -> None:
    """The server loads every YAML file of its dialplans directory as a plan; check does too."""
    plans = tmp_path / "dialplans"
    plans.mkdir()
    odd = plans / "notes.yaml"
    odd.write_text("sip:\n  t1: 0.5\n")
    [result] = check([odd], _settings(tmp_path))[1:]
    assert result.kind == "dialplan"
    assert any("not an E.164 number" in error for error in result.errors)


def test_a_missing_file_named_is_an_error_of_its_kind(tmp_path: Path) -> None:
    """A blacklist or dialplan named but absent is reported, never taken as empty."""
    results = check([tmp_path / "gone.txt", tmp_path / "38733100200.yaml"], _settings(tmp_path))
    assert [(r.kind, r.errors[0].endswith("cannot read: no such file")) for r in results[1:]] == [
        ("blacklist", True),
        ("dialplan", True),
    ]


def test_broken_settings_in_force_are_reported_while_the_dialplan_is_checked() -> None:
    """A bad CALLSERVER_* variable is named even when only a dialplan is checked."""
    result = callserver("check", "dialplans/38733100200.yaml", env={"CALLSERVER_SIP__T1": "soon"})
    assert result.returncode == 1
    assert result.stderr.startswith("environment CALLSERVER_SIP__T1: sip.t1: ")
    assert result.stdout.splitlines() == ["dialplans/38733100200.yaml: ok (dialplan)"]


def test_the_shipped_centrex_file_named_alone_is_ok() -> None:
    """`callserver check config/centrex.yaml` checks it against the trunks and dialplans."""
    result = callserver("check", "config/centrex.yaml")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["config/centrex.yaml: ok (centrex)", "ok"]


def test_a_centrex_number_with_a_dialplan_fails_the_settings(tmp_path: Path) -> None:
    """Checking the settings checks their centrex file against their dialplans directory."""
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(SHIPPED_PLAN, plans / "38733100201.yaml")
    centrex = ROOT / "config" / "centrex.yaml"
    config = _settings(tmp_path, f"centrex: {centrex}\n").read_text()
    path = tmp_path / "callserver.yaml"
    path.write_text(config.replace(f"dialplans: {tmp_path / 'none'}", f"dialplans: {plans}"))
    [result] = check([], path)
    line = centrex.read_text().splitlines().index('      "+387 33 100 201":') + 1
    assert result.errors == (
        f"{centrex}:{line}: groups.callcentre-demo-office.subscribers.+387 33 100 201: "
        "+38733100201 has a dialplan file too: a number is either a subscriber's or a "
        "dialplan's",
    )


def test_a_centrex_group_of_an_unknown_customer_is_an_error(tmp_path: Path) -> None:
    """A centrex file named alone is checked against the customers of the settings' trunks."""
    bad = tmp_path / "centrex.yaml"
    bad.write_text("groups:\n  g:\n    customer: nobody\n    numbers: ['+387 33 100 200']\n")
    [result] = check([bad], _settings(tmp_path))[1:]
    assert (result.kind, result.errors) == (
        "centrex",
        (f"{bad}:3: groups.g.customer: 'nobody' is not a customer of trunks.yaml",),
    )


def test_a_centrex_group_of_another_realm_is_an_error(tmp_path: Path) -> None:
    """A group whose realm is not the trunks' digest realm fails the check on its realm line."""
    bad = tmp_path / "centrex.yaml"
    bad.write_text(
        "groups:\n  g:\n    customer: callcentre-demo\n    numbers: ['+387 33 100 200']\n"
        "    realm: elsewhere\n"
    )
    [result] = check([bad], _settings(tmp_path))[1:]
    assert (result.kind, result.errors) == (
        "centrex",
        (
            f"{bad}:5: groups.g.realm: realm 'elsewhere' is not trunks.yaml's digest realm "
            "'callserver': phones are challenged in that realm, so this group's could never "
            "authenticate",
        ),
    )


def test_an_unreadable_music_on_hold_file_is_an_error_of_the_settings(tmp_path: Path) -> None:
    """`callserver check` lists a file of the music directory that cannot be decoded."""
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy(ROOT / "prompts" / "moh" / "chords.wav", music / "a.wav")
    (music / "b.wav").write_bytes(b"RIFF....WAVEjunk")
    path = _settings(tmp_path, "")
    path.write_text(path.read_text().replace("media:\n", f"media:\n  music_dir: {music}\n"))
    [result] = check([], path)
    assert f"{music / 'b.wav'}: not a valid WAV file: Couldn't find fmt header in wav data" in (
        result.errors
    )
    assert not any(str(music / "a.wav") in e for e in result.errors), result.errors


def test_service_codes_of_a_centrex_file_are_checked(tmp_path: Path) -> None:
    """A centrex file's service_codes are checked with their line: two services, one code."""
    bad = tmp_path / "phones.yaml"
    bad.write_text("service_codes:\n  dnd: '26'\n  call_waiting: '26'\n")
    assert kind_of(bad, Settings.model_construct()) == "centrex"
    [result] = check([bad], _settings(tmp_path))[1:]
    assert result.errors == (
        f"{bad}:1: service_codes: dnd and call_waiting both have the code '26'",
    )


def test_a_customers_recording_announcement_must_be_among_the_prompts(tmp_path: Path) -> None:
    """A trunks file whose customer's announcement names no prompt fails, named alone and
    through the settings, with its file:line: field; a prompt that exists passes."""
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text(
        "customers:\n  acme:\n    recording:\n      calls: all\n"
        "      announcement: [goodbye, recording_notise]\n"
    )
    settings = _settings(tmp_path).read_text().replace(str(ROOT / "config" / "trunks.yaml"), "")
    settings_file = tmp_path / "callserver.yaml"
    settings_file.write_text(settings.replace("trunks: \n", f"trunks: {trunks}\n"))
    alone, through = check([trunks, settings_file], settings_file)[1:]
    expected = (
        f"{trunks}:5: customers.acme.recording.announcement.1: prompt 'recording_notise' is "
        "missing for language en"
    )
    assert (alone.kind, alone.errors) == ("trunks", (expected,))
    assert through.kind == "settings" and expected in through.errors
    trunks.write_text(trunks.read_text().replace("recording_notise", "goodbye"))
    assert check([trunks], settings_file)[1].errors == ()
