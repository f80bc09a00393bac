"""The parts of a REGISTER the registrar acts on, read and checked (RFC 3261 §10.3 steps 5-6).

A malformed To, Contact or Expires raises :class:`RegisterRejected` with 400 and a reason
naming the field; a non-zero expiry below the minimum raises it with 423 and ``Min-Expires``
(RFC 3261 §10.3 step 6, §21.4.17); ``*`` with other contacts or a non-zero Expires is 400
(RFC 3261 §10.3 step 6: "the request is invalid").
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.errors import SipParseError
from callserver.sip.headers import Address, parse_address
from callserver.sip.message import Request
from callserver.sip.uri import SipUri

__all__ = [
    "ContactRequest",
    "ExpiryPolicy",
    "RegisterRejected",
    "RequestedBinding",
    "read_register",
]

_MAX_EXPIRES = 2**32 - 1  # RFC 3261 §20.19: delta-seconds, at most 2**32-1


class RegisterRejected(Exception):
    """Answer the REGISTER with ``status``, ``reason`` and ``headers`` (held ``delay`` s);
    nothing changes."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        delay: float = 0.0,
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers
        self.delay = delay


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryPolicy:
    """Expiry limits in seconds: ``minimum`` (423 below), ``default``, ``maximum`` (capped)."""

    minimum: int = 60
    default: int = 3600
    maximum: int = 7200

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.default <= self.maximum:
            raise ValueError("expiry limits need 0 < minimum <= default <= maximum")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedBinding:
    """One Contact of the REGISTER with the expiry granted to it (0: remove)."""

    contact: str
    expires: int
    q: float | None
    instance: str | None
    reg_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRequest:
    """What the REGISTER asks: ``aor`` (the To URI's user), its contacts or ``star``."""

    aor: str
    bindings: tuple[RequestedBinding, ...]
    star: bool
    call_id: str
    cseq: int
    path: tuple[str, ...]
    user_agent: str | None = None  # the User-Agent header (RFC 3261 §20.41), for display


def read_register(request: Request, policy: ExpiryPolicy) -> ContactRequest:
    """Read To, Contact, Expires and Path of ``request`` (RFC 3261 §10.3, RFC 3327 §5.3),
    and its User-Agent (§20.41: kept with the bindings, at most 256 characters).

    Raises:
        RegisterRejected: 400 for a malformed field, 423 for a too brief expiry.
    """
    aor = _aor(request)
    header = _expires_header(request)
    values, path = _listed(request, "Contact"), tuple(_listed(request, "Path"))
    call_id, cseq = request.call_id(), request.cseq().seq
    if [v.strip() for v in values] == ["*"]:
        if header != 0:
            raise RegisterRejected(400, "Contact '*' needs Expires: 0")
        return ContactRequest(
            aor=aor, bindings=(), star=True, call_id=call_id, cseq=cseq, path=path
        )
    user_agent = request.headers.get("User-Agent")
    if any(v.strip() == "*" for v in values):
        raise RegisterRejected(400, "Contact '*' must be the only Contact")
    bindings = tuple(_binding(value, header, policy) for value in values)
    contacts = [binding.contact for binding in bindings]
    if len(set(contacts)) != len(contacts):
        raise RegisterRejected(400, "The same Contact appears more than once")
    return ContactRequest(
        aor=aor,
        bindings=bindings,
        star=False,
        call_id=call_id,
        cseq=cseq,
        path=path,
        user_agent=None if user_agent is None else user_agent.strip()[:256] or None,
    )


def _aor(request: Request) -> str:
    try:
        uri = request.to().uri
    except SipParseError as exc:
        raise RegisterRejected(400, f"Malformed To: {exc}") from None
    if not isinstance(uri, SipUri) or not uri.user:
        raise RegisterRejected(400, "To is not a sip: URI with a user part")
    return uri.user


def _listed(request: Request, name: str) -> list[str]:
    """The comma-separated values of header ``name``; a quote left open is a 400."""
    try:
        return request.headers.values(name)
    except SipParseError as exc:
        raise RegisterRejected(400, f"Malformed {name}: {exc}") from None


def _expires_header(request: Request) -> int | None:
    value = request.headers.get("Expires")
    return None if value is None else _delta(value, "Expires")


def _binding(value: str, header: int | None, policy: ExpiryPolicy) -> RequestedBinding:
    try:
        address = parse_address(value)
    except SipParseError as exc:
        raise RegisterRejected(400, f"Malformed Contact: {exc}") from None
    if not isinstance(address.uri, SipUri):
        raise RegisterRejected(400, f"Contact {value[:40]!r} is not a sip: or sips: URI")
    raw = address.param("expires")
    asked = _delta(raw, "Contact expires") if raw is not None else header
    return RequestedBinding(
        contact=str(address.uri),
        expires=_granted(asked, policy),
        q=_q(address),
        instance=address.param("+sip.instance"),
        reg_id=_reg_id(address),
    )


def _granted(asked: int | None, policy: ExpiryPolicy) -> int:
    """RFC 3261 §10.3 step 6: default when absent, 423 below the minimum, capped at the max."""
    if asked is None:
        return policy.default
    if asked == 0:
        return 0
    if asked < policy.minimum:
        headers = (("Min-Expires", str(policy.minimum)),)
        raise RegisterRejected(423, "Interval Too Brief", headers)
    return min(asked, policy.maximum)


def _delta(text: str, field: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise RegisterRejected(400, f"Malformed {field}: {text[:20]!r} is not delta-seconds")
    return min(int(text), _MAX_EXPIRES)


def _q(address: Address) -> float | None:
    raw = address.param("q")
    if raw is None:
        return None
    try:
        q = float(raw)
    except ValueError:
        q = -1.0
    if not 0.0 <= q <= 1.0 or len(raw) > 5:
        raise RegisterRejected(400, f"Malformed Contact q-value {raw[:10]!r} (RFC 3261 §20.10)")
    return q


def _reg_id(address: Address) -> int | None:
    raw = address.param("reg-id")
    if raw is None:
        return None
    if not raw.isdigit() or not raw.isascii() or not 0 < int(raw) < 2**31:
        raise RegisterRejected(400, f"Malformed Contact reg-id {raw[:10]!r} (RFC 5626 §4.2)")
    return int(raw)
