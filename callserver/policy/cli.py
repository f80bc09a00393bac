"""Calling line identity toward a carrier: CLI screening and presentation (pure).

Theory of operation
-------------------
A call that goes out to a carrier carries the caller's number in E.164, in From and in
``P-Asserted-Identity`` (RFC 3325 §9.1), the identity the carrier trusts between the two
networks.

Screening (``screen_cli``). A phone's number is its own (its subscriber's DID). A PBX on a
trunk presents whatever its users dialled from; the number goes out only when it is one of the
customer's own numbers (``owned``), normalised to E.164; anything else (another operator's
number, junk, nothing) is replaced by the trunk's main number. This is "network provided" CLI
after screening, as ITU-T Q.731.3 calls it: the network never asserts a number the customer
does not hold.

Presentation (``presentation``). With CLIR (restriction) the From is the anonymous URI
``"Anonymous" <sip:anonymous@anonymous.invalid>`` (RFC 3323 §4.1.1.3) and ``Privacy: id``
(RFC 3325 §9.3) asks the next network to keep the asserted identity from the called party; the
P-Asserted-Identity still carries the number, for the carrier (emergency services, lawful
tracing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callserver.policy.numbering import e164

__all__ = [
    "ANONYMOUS_DISPLAY",
    "ANONYMOUS_HOST",
    "ANONYMOUS_USER",
    "Presentation",
    "presentation",
    "screen_cli",
]

ANONYMOUS_DISPLAY = "Anonymous"  # RFC 3323 §4.1.1.3
ANONYMOUS_USER = "anonymous"
ANONYMOUS_HOST = "anonymous.invalid"


def screen_cli(
    presented: str | None, *, owned: Callable[[str], bool], main: str | None
) -> str | None:
    """The E.164 number to present for a PBX trunk's call (module docstring: screening).

    Args:
        presented: the number the PBX presented (its From or P-Asserted-Identity user), in any
            form ``numbering.normalise`` reads, or None.
        owned: whether an E.164 number is one of the customer's own numbers.
        main: the trunk's main number in E.164, or None when it has none.

    Returns:
        ``presented`` normalised when it is the customer's, else ``main``.
    """
    if presented is not None:
        try:
            number = e164(presented)
        except ValueError:
            return main
        if owned(number):
            return number
    return main


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation:
    """How a call presents its caller toward a carrier: the From user, host and display name,
    and the extra headers (``P-Asserted-Identity``, and ``Privacy`` with CLIR)."""

    from_user: str
    from_host: str
    display: str | None
    headers: tuple[tuple[str, str], ...]

    @property
    def from_uri(self) -> str:
        """The From URI, ``sip:user@host``."""
        return f"sip:{self.from_user}@{self.from_host}"


def presentation(number: str, *, clir: bool, host: str, display: str | None = None) -> Presentation:
    """The identity of a call from the E.164 ``number`` (module docstring: presentation).

    ``host`` is the host part of the From and P-Asserted-Identity URIs (the server's own
    domain or address, the carrier's when it asks for its own); ``display`` the caller's name.
    RFC 3325 §9.1 (P-Asserted-Identity), §9.3 (``Privacy: id``), RFC 3323 §4.1.1.3.

    Raises:
        ValueError: ``number`` is not in E.164 (``+`` and digits).
    """
    if not (number.startswith("+") and number[1:].isdigit() and e164(number) == number):
        raise ValueError(f"{number!r}: the caller's number is presented in E.164 (+387...)")
    asserted = ("P-Asserted-Identity", f"<sip:{number}@{host}>")
    if clir:
        return Presentation(
            from_user=ANONYMOUS_USER,
            from_host=ANONYMOUS_HOST,
            display=ANONYMOUS_DISPLAY,
            headers=(asserted, ("Privacy", "id")),
        )
    return Presentation(from_user=number, from_host=host, display=display, headers=(asserted,))
