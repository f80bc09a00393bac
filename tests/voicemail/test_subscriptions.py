"""Tests for message-summary subscriptions: the transition table, the body, the store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from callserver.sip.peer import Peer
from callserver.voicemail.subscription_store import SubscriptionStore
from callserver.voicemail.subscriptions import (
    Change,
    DialogKey,
    State,
    Subscription,
    SubscriptionTable,
    summary_body,
)

UDP = Peer("udp", "127.0.0.1", 5070)


def subscription(tag: str = "ours", *, expires: float = 3600.0, peer: Peer = UDP) -> Subscription:
    """A phone's subscription to box +38733100201."""
    return Subscription(
        key=DialogKey("cid-1", tag, "theirs"),
        aor="+38733100201",
        local=f"<sip:38733100201@127.0.0.1>;tag={tag}",
        remote="<sip:38733100201@127.0.0.1>;tag=theirs",
        target="sip:phone@127.0.0.1:5070",
        route=("<sip:edge.example.net;lr>",),
        peer=peer,
        expires=expires,
    )


def test_body_is_rfc_3842_message_summary() -> None:
    """Messages-Waiting, Message-Account and Voice-Message new/old, CRLF lines."""
    body = summary_body(2, 5, "sip:+38733100201@127.0.0.1")
    assert body == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:+38733100201@127.0.0.1\r\n"
        b"Voice-Message: 2/5\r\n"
    )
    assert summary_body(0, 3, "sip:x@y").startswith(b"Messages-Waiting: no\r\n")


def test_subscribe_refresh_unsubscribe() -> None:
    """A subscription is active once subscribed and refreshed, gone once unsubscribed."""
    table = SubscriptionTable()
    made = table.apply(subscription(), Change.SUBSCRIBED)
    assert made.subscription.state is State.ACTIVE
    assert table.watching("+38733100201") == [made.subscription]
    table.apply(replace(made.subscription, expires=7200.0), Change.REFRESHED)
    assert table.get_timer() == 7200.0
    ended = table.apply(made.subscription, Change.UNSUBSCRIBED)
    assert ended.subscription.state is State.TERMINATED
    assert len(table) == 0 and table.get_timer() is None


def test_a_change_missing_from_the_table_raises() -> None:
    """Refreshing a subscription that does not exist is a bug, not a new state."""
    with pytest.raises(KeyError):
        SubscriptionTable().apply(subscription(), Change.REFRESHED)


def test_expiry_and_notify_cseq() -> None:
    """Each NOTIFY takes the next CSeq; a subscription past its deadline expires."""
    table = SubscriptionTable()
    table.apply(subscription("a", expires=10.0), Change.SUBSCRIBED)
    table.apply(subscription("b", expires=20.0), Change.SUBSCRIBED)
    key = DialogKey("cid-1", "a", "theirs")
    advanced = [table.next_cseq(key), table.next_cseq(key)]
    assert [s.cseq for s in advanced if s is not None] == [1, 2]
    expired = table.expired(15.0)
    assert [c.subscription.key.local_tag for c in expired] == ["a"]
    assert table.next_cseq(key) is None
    assert table.get_timer() == 20.0


def test_store_keeps_udp_subscriptions_across_a_restart(tmp_path: Path) -> None:
    """A restart (new monotonic clock) gets back the UDP subscriptions with their time left;
    ended, expired and TCP ones are not loaded."""
    wall = [1_000_000.0]
    store = SubscriptionStore(tmp_path / "mwi.sqlite", wall=lambda: wall[0])
    table = SubscriptionTable()
    kept = table.apply(replace(subscription("udp", expires=600.0), cseq=4), Change.SUBSCRIBED)
    tcp = table.apply(
        subscription("tcp", expires=600.0, peer=Peer("tcp", "127.0.0.1", 5070, 7)),
        Change.SUBSCRIBED,
    )
    short = table.apply(subscription("short", expires=150.0), Change.SUBSCRIBED)
    gone = table.apply(subscription("gone"), Change.SUBSCRIBED)
    store.apply(
        [kept, tcp, short, gone, table.apply(gone.subscription, Change.UNSUBSCRIBED)], 100.0
    )
    store.close()
    wall[0] += 100.0  # the process restarts 100 s later, its loop clock at 5.0
    again = SubscriptionStore(tmp_path / "mwi.sqlite", wall=lambda: wall[0])
    loaded = again.load(5.0)
    again.close()
    assert [s.key.local_tag for s in loaded] == ["udp"]
    assert loaded[0].expires == pytest.approx(5.0 + 400.0)
    assert (loaded[0].cseq, loaded[0].route, loaded[0].peer) == (4, kept.subscription.route, UDP)
