"""Whatever a phone sends, the registrar answers and never raises (RFC 3261 §10.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from .support import AOR, UDP, authorization, register, registrar

_PIECES = st.sampled_from(
    [
        "<sip:201@192.0.2.10>",
        "<sip:201@192.0.2.12:5060;transport=tcp>",
        "*",
        ";expires=0",
        ";expires=30",
        ";expires=99999999999",
        ";q=0.5",
        ";q=2",
        ';+sip.instance="<urn:uuid:1>"',
        ";reg-id=1",
        ";reg-id=0",
        "<tel:+38733100201>",
        '"Desk" ',
        ",",
        "<",
        ">",
        ";",
        "=",
    ]
)
_VALUE = st.lists(_PIECES, max_size=6).map("".join) | st.text(max_size=20)
_EXPIRES = st.none() | st.sampled_from(["0", "30", "600", "x", "-1", "99999999999"])


@given(contacts=st.lists(_VALUE, max_size=3), expires=_EXPIRES, cseq=st.integers(1, 5))
def test_arbitrary_contacts_only_get_answers(
    contacts: list[str], expires: str | None, cseq: int
) -> None:
    """Authenticated REGISTERs with arbitrary Contact and Expires values get a status, no raise."""
    reg = registrar()
    first = reg.register(register(), UDP, 1.0)
    creds = authorization(first.headers)
    extra = [creds] if expires is None else [creds, ("Expires", expires)]
    answer = reg.register(register(contacts, cseq=cseq + 1, extra=extra), UDP, 2.0)
    assert answer.status in {200, 400, 423, 503}
    assert answer.status == 200 or answer.changes == ()
    assert all(b.expires >= 62.0 for b in reg.lookup(AOR, 2.0))
