"""config/centrex.yaml: the shipped example, number blocks, lookups and the customers' numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.centrex import load_centrex, load_customers, with_group_numbers
from callserver.config.centrex_file import parse_block
from callserver.config.errors import OperatorFileError
from callserver.config.trunks import load_trunks
from callserver.policy.services import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "centrex.yaml"
TRUNKS = ROOT / "config" / "trunks.yaml"
MD5 = "81e5a519d3e1b0a11f696813c26526cb"


def test_shipped_file_has_one_group_of_three_phones() -> None:
    """The example group of callcentre-demo holds +387 33 100 201-203 with their extensions."""
    trunks, centrex = load_customers(TRUNKS, SHIPPED, ["38733100200"])
    group = centrex.groups["callcentre-demo-office"]
    assert group.customer == "callcentre-demo"
    assert sorted(centrex.by_number) == ["+38733100201", "+38733100202", "+38733100203"]
    assert [centrex.extension(group.id, ext) for ext in ("201", "202", "30")] == [
        centrex.subscriber(n) for n in ("+38733100201", "38733100202", "+38733100203")
    ]
    assert len(trunks.customers["callcentre-demo"].numbers) == 100


def test_subscriber_carries_ha1_barring_and_defaults() -> None:
    """A subscriber has both HA1 values, the group's barring before its own, and its realm."""
    centrex = load_centrex(SHIPPED)
    sales = centrex.account("38733100202")
    assert sales is not None
    assert sales.realm == "callserver"
    assert set(sales.ha1) == {"MD5", "SHA-256"}
    assert sales.barring == ("premium", "international")
    assert (sales.clir, sales.max_contacts, sales.name) == (False, None, "Sales")
    assert centrex.account("nobody") is None
    assert centrex.extension("callcentre-demo-office", "299") is None


def test_missing_file_means_no_groups(tmp_path: Path) -> None:
    """A centrex.yaml that does not exist loads as no groups and no subscribers."""
    centrex = load_centrex(tmp_path / "centrex.yaml")
    assert not centrex.groups
    assert centrex.subscriber("+38733100201") is None


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("+387 33 100 200-299", "+38733100200", "+38733100299"),
        ("033 100 200-209", "+38733100200", "+38733100209"),
        ("+387 33 100 250", "+38733100250", "+38733100250"),
    ],
)
def test_block_syntax(text: str, first: str, last: str) -> None:
    """A block is a first number and the last digits of its last, or a single number."""
    block = parse_block(text)
    assert (block.first, block.last) == (first, last)
    assert first in block
    assert "+38733100300" not in block


def test_block_lists_its_numbers() -> None:
    """A block's numbers run from its first to its last, zero-padded, in order."""
    assert parse_block("+387 33 100 208-211").numbers() == [
        "+38733100208",
        "+38733100209",
        "+38733100210",
        "+38733100211",
    ]


def test_group_of_finds_the_block() -> None:
    """group_of answers the group whose block holds a number, and None outside every block."""
    centrex = load_centrex(SHIPPED)
    assert centrex.group_of("+38733100299") is centrex.groups["callcentre-demo-office"]
    assert centrex.group_of("+38733100300") is None


def test_customer_numbers_come_from_the_group(tmp_path: Path) -> None:
    """with_group_numbers gives a customer with a group the group's numbers and leaves others."""
    trunks_path = tmp_path / "trunks.yaml"
    trunks_path.write_text(
        "customers:\n  acme: {channels: 2}\n  other: {numbers: ['033 999 999']}\n"
    )
    path = tmp_path / "centrex.yaml"
    path.write_text(
        "groups:\n  g:\n    customer: acme\n    numbers: ['+387 33 100 200-201']\n"
        "    subscribers:\n"
        f"      '+38733100200': {{username: u, ha1_md5: {MD5}, extension: '20'}}\n"
    )
    trunks = load_trunks(trunks_path)
    merged = with_group_numbers(trunks, load_centrex(path, customers=trunks.customers))
    assert merged.customers["acme"].numbers == ["+38733100200", "+38733100201"]
    assert merged.customers["acme"].channels == 2
    assert merged.customers["other"].numbers == ["+38733999999"]


def test_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    """A file that holds a list is refused at line 1, saying what it must hold."""
    path = tmp_path / "centrex.yaml"
    path.write_text("- one\n")
    with pytest.raises(OperatorFileError) as caught:
        load_centrex(path)
    assert caught.value.errors == [f"{path}:1: the file must hold groups of subscribers"]


def test_bad_trunks_file_is_reported_first(tmp_path: Path) -> None:
    """load_customers reports trunks.yaml's own errors before it reads centrex.yaml."""
    trunks_path = tmp_path / "trunks.yaml"
    trunks_path.write_text("customers:\n  acme: {channels: -1}\n")
    with pytest.raises(OperatorFileError, match=r"trunks.yaml:2: customers.acme.channels"):
        load_customers(trunks_path, SHIPPED)


def test_a_phone_may_not_share_a_trunks_username(tmp_path: Path) -> None:
    """A subscriber username that is a digest trunk's too is an error at the username's line."""
    trunks_path = tmp_path / "trunks.yaml"
    trunks_path.write_text(
        "customers:\n  acme: {}\n"
        "trunks:\n  pbx: {digest: {username: shared, password: s3cret}, customer: acme}\n"
    )
    path = tmp_path / "centrex.yaml"
    path.write_text(
        "groups:\n  g:\n    customer: acme\n    numbers: ['+387 33 100 200']\n"
        "    subscribers:\n      '+38733100200':\n        username: shared\n"
        f"        ha1_md5: {MD5}\n        extension: '20'\n"
    )
    with pytest.raises(OperatorFileError) as caught:
        load_customers(trunks_path, path)
    assert caught.value.errors == [
        f"{path}:7: groups.g.subscribers.+38733100200.username: username 'shared' is a "
        "trunk's digest username in trunks.yaml: usernames are unique"
    ]


def test_services_are_the_groups_with_the_subscribers_keys_on_top(tmp_path: Path) -> None:
    """A subscriber's services start from its group's; the keys it writes replace those, its
    locks add to the group's, and language and pickup group fall back to the group's."""
    path = tmp_path / "centrex.yaml"
    path.write_text(
        "groups:\n"
        "  office:\n"
        "    customer: demo\n"
        "    numbers: ['+387 33 100 200-299']\n"
        "    extensions: {digits: 3}\n"
        "    language: hr\n"
        "    services: {forward_busy: '205', call_waiting: false, locks: [dnd]}\n"
        "    subscribers:\n"
        f"      '+387 33 100 201': {{username: a, ha1_md5: {MD5}, language: de,\n"
        "        pickup_group: front, services: {forward_no_answer: VM,\n"
        "        no_answer_seconds: 15, call_waiting: true, locks: [forward_always]}}\n"
        f"      '+387 33 100 202': {{username: b, ha1_md5: {MD5}}}\n"
    )
    centrex = load_centrex(path)
    own, plain = centrex.subscriber("+38733100201"), centrex.subscriber("+38733100202")
    assert own is not None and plain is not None
    assert own.services == ServiceSettings(
        forward_busy="205", forward_no_answer="VM", no_answer_seconds=15, call_waiting=True
    )
    assert own.locks == {"dnd", "forward_always"}
    assert (own.language, own.pickup_group) == ("de", "front")
    assert plain.services == ServiceSettings(forward_busy="205", call_waiting=False)
    assert (plain.language, plain.pickup_group, plain.locks) == ("hr", "office", {"dnd"})
    assert own.services.target_for("no-answer") == "VM"
    assert own.services.forwarding_off() == ServiceSettings(no_answer_seconds=15, call_waiting=True)


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("+387 61 100 100", "+38761100100"),
        ("061 100 100", "+38761100100"),
        ("205", "205"),
        ("VM", "VM"),
        ("voicemail", None),
        ("2", None),
    ],
)
def test_forwarding_targets(tmp_path: Path, written: str, kept: str | None) -> None:
    """A forwarding target is kept as E.164, an extension or VM; anything else is refused."""
    path = tmp_path / "centrex.yaml"
    path.write_text(
        "groups:\n  office:\n    customer: demo\n    numbers: ['+387 33 100 200-299']\n"
        f"    extensions: {{digits: 3}}\n    services: {{forward_always: '{written}'}}\n"
        f"    subscribers: {{'+387 33 100 201': {{username: a, ha1_md5: {MD5}}}}}\n"
    )
    if kept is None:
        with pytest.raises(OperatorFileError, match="a forwarding target is a number"):
            load_centrex(path)
        return
    subscriber = load_centrex(path).subscriber("+38733100201")
    assert subscriber is not None and subscriber.services.forward_always == kept
