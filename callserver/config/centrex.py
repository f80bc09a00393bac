"""config/centrex.yaml: IP Centrex groups of the customers of trunks.yaml and their phones.

    groups:
      callcentre-demo-office:
        customer: callcentre-demo          # a customer of trunks.yaml
        numbers: ["+387 33 100 200-299"]   # the customer's numbers: written here only
        channels: 4
        barring: [premium]
        realm: callserver                  # the digest realm of its phones (RFC 7616 §3.3)
        extensions: {digits: 3}            # extension = the last 3 digits unless set
        language: bs                       # of its phones' prompts (default: the server's)
        services: {call_waiting: true, locks: [forward_always]}   # its phones start from
        subscribers:
          "+387 33 100 201":
            name: Reception
            username: "38733100201"
            ha1_md5: 0c6e...               # `callserver passwd USERNAME REALM` prints these
            ha1_sha256: 5e1f...
            barring: [international]       # on top of the group's
            clir: false
            max_contacts: 3
            language: hr                   # instead of the group's
            pickup_group: front            # who may pick up its calls (default: the group)
            role: supervisor               # may listen, whisper and barge (*222EXT ...)
            services:                      # on top of the group's (policy.services)
              forward_busy: "+387 61 100 100"
              forward_no_answer: VM        # a number, an extension or VM (its voicemail box)
              no_answer_seconds: 20
            email: reception@example.com   # new voicemail messages mailed here, WAV attached

Theory of operation
-------------------
``load_centrex`` reads the file with line positions, validates each entry against
``centrex_file.CentrexFile`` and compiles the whole into an immutable ``Centrex``: subscribers
by number, by (group, extension) and by username. Everything that needs more than one entry is
checked here, every fault collected as ``file:line: field: message``: a number outside its
group's blocks, a number, extension or username given twice, overlapping blocks of two groups;
with ``customers`` (trunks.yaml) a group's unknown customer and a customer whose ``numbers``
are also written in trunks.yaml; with ``trunk_usernames`` a phone's username that is a trunk's
too; with ``dialplan_numbers`` a subscriber's number that also has a dialplan file; with
``realm`` (trunks.yaml's digest realm, in which the registrar and the INVITEs of phones
challenge) a group of another realm, whose phones could never authenticate.
``with_group_numbers`` then gives each customer with a group its numbers from the group's
blocks, so a number is written in one place only. The compiled values (``Centrex``, ``Group``,
``Subscriber``) are defined in ``centrex_groups``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from pydantic import ValidationError

from callserver.config.centrex_file import (
    CentrexFile,
    GroupSchema,
    NumberBlock,
    ServicesSchema,
    SubscriberSchema,
    e164,
)
from callserver.config.centrex_groups import Centrex, Group, Subscriber
from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors, line_of
from callserver.config.settings import read_yaml
from callserver.config.trunks import CustomerConfig, TrunksFile, load_trunks
from callserver.policy.service_codes import ServiceCodes
from callserver.policy.services import ServiceSettings

__all__ = [
    "DEFAULT_CENTREX",
    "Centrex",
    "Group",
    "Subscriber",
    "compile_centrex",
    "load_centrex",
    "load_customers",
    "trunk_usernames",
    "with_group_numbers",
]

DEFAULT_CENTREX = Path("config/centrex.yaml")
Loc = tuple[str | int, ...]


class _Compiler:
    """One compile of a validated file; ``errors`` collects ``(location, message)``."""

    def __init__(self, dialplan_numbers: Collection[str], trunk_usernames: Collection[str]) -> None:
        self.trunk_usernames = frozenset(trunk_usernames)
        self.plans = {n if n.startswith("+") else f"+{n}" for n in dialplan_numbers}
        self.errors: list[tuple[Loc, str]] = []
        self.by_number: dict[str, Subscriber] = {}
        self.by_extension: dict[tuple[str, str], Subscriber] = {}
        self.by_username: dict[str, Subscriber] = {}

    def group(self, gid: str, schema: GroupSchema) -> Group:
        group = Group(
            id=gid,
            customer=schema.customer,
            blocks=tuple(schema.numbers),
            channels=schema.channels,
            barring=tuple(schema.barring),
            realm=schema.realm,
        )
        for written, sub in schema.subscribers.items():
            self.subscriber(group, schema, written, sub)
        return group

    def subscriber(
        self, group: Group, schema: GroupSchema, written: str, sub: SubscriberSchema
    ) -> None:
        loc: Loc = ("groups", group.id, "subscribers", written)
        try:
            number = e164(written)
        except ValueError as exc:
            self.errors.append((loc, str(exc)))
            return
        if not group.owns(number):
            self.errors.append((loc, f"{number} is not in the group's numbers"))
            return
        if number in self.plans:
            self.errors.append(
                (
                    loc,
                    f"{number} has a dialplan file too: a number is either"
                    " a subscriber's or a dialplan's",
                )
            )
            return
        extension = sub.extension or _last_digits(number, schema.extensions.digits)
        if extension is None:
            message = "needs an extension: set one, or the group's extensions.digits"
            self.errors.append((loc, message))
            return
        entry = Subscriber(
            number=number,
            group=group.id,
            extension=extension,
            name=sub.name,
            username=sub.username,
            realm=group.realm,
            ha1=MappingProxyType(_ha1(sub.ha1_md5, sub.ha1_sha256)),
            barring=tuple(dict.fromkeys((*group.barring, *sub.barring))),
            clir=sub.clir,
            max_contacts=sub.max_contacts,
            language=sub.language or schema.language,
            pickup_group=sub.pickup_group or group.id,
            services=_services(schema.services, sub.services),
            locks=frozenset((*schema.services.locks, *sub.services.locks)),
            email=sub.email,
            role=sub.role,
        )
        self.add(loc, entry)

    def add(self, loc: Loc, entry: Subscriber) -> None:
        if entry.number in self.by_number:
            self.errors.append((loc, f"{entry.number} is a subscriber twice"))
            return
        key = (entry.group, entry.extension)
        if key in self.by_extension:
            other = self.by_extension[key].number
            message = f"extension {entry.extension} is already {other}'s in this group"
            self.errors.append(((*loc, "extension"), message))
            return
        if entry.username in self.trunk_usernames:
            message = (
                f"username {entry.username!r} is a trunk's digest username in trunks.yaml: "
                "usernames are unique"
            )
            self.errors.append(((*loc, "username"), message))
            return
        if entry.username in self.by_username:
            other = self.by_username[entry.username].number
            message = f"username {entry.username!r} is already {other}'s: usernames are unique"
            self.errors.append(((*loc, "username"), message))
            return
        self.by_number[entry.number] = entry
        self.by_extension[key] = entry
        self.by_username[entry.username] = entry


def _services(group: ServicesSchema, own: ServicesSchema) -> ServiceSettings:
    """The group's services with the keys the subscriber writes laid over them."""
    fields = group.model_dump(exclude={"locks"})
    fields.update(own.model_dump(include=own.model_fields_set - {"locks"}))
    return ServiceSettings(**fields)


def _last_digits(number: str, digits: int | None) -> str | None:
    return None if digits is None else number[-digits:]


def _ha1(md5: str | None, sha256: str | None) -> dict[str, str]:
    pairs = (("MD5", md5), ("SHA-256", sha256))
    return {algorithm: value for algorithm, value in pairs if value is not None}


def compile_centrex(
    file: CentrexFile,
    dialplan_numbers: Collection[str] = (),
    trunk_usernames: Collection[str] = (),
) -> tuple[Centrex, list[tuple[Loc, str]]]:
    """Compile a validated file; the errors are ``(location, message)`` pairs, none when valid.

    A subscriber whose number is one of ``dialplan_numbers`` (E.164, ``+`` optional) is an
    error: the number would have two meanings; so is one whose username is one of
    ``trunk_usernames`` (trunks' digest usernames): a username names one account.
    """
    compiler = _Compiler(dialplan_numbers, trunk_usernames)
    groups = {gid: compiler.group(gid, schema) for gid, schema in file.groups.items()}
    compiler.errors += _overlaps(groups)
    centrex = Centrex(
        groups=MappingProxyType(groups),
        by_number=MappingProxyType(compiler.by_number),
        by_extension=MappingProxyType(compiler.by_extension),
        by_username=MappingProxyType(compiler.by_username),
        codes=ServiceCodes(**file.service_codes.model_dump()),
    )
    return centrex, compiler.errors


def _overlaps(groups: Mapping[str, Group]) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    seen: list[tuple[str, NumberBlock]] = []
    for gid, group in groups.items():
        for index, block in enumerate(group.blocks):
            for other, earlier in seen:
                if block.first in earlier or block.last in earlier or earlier.first in block:
                    message = f"{block.first} to {block.last} overlaps a block of group {other!r}"
                    out.append((("groups", gid, "numbers", index), message))
            seen.append((gid, block))
    return out


def _customer_checks(
    centrex: Centrex, customers: Mapping[str, CustomerConfig]
) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for gid, group in centrex.groups.items():
        customer = customers.get(group.customer)
        loc: Loc = ("groups", gid, "customer")
        if customer is None:
            out.append((loc, f"{group.customer!r} is not a customer of trunks.yaml"))
        elif customer.numbers:
            message = (
                f"customer {group.customer!r} also lists numbers in trunks.yaml: a customer "
                "with a Centrex group takes its numbers from the group; remove them there"
            )
            out.append((loc, message))
    return out


def _realm_checks(centrex: Centrex, realm: str) -> list[tuple[Loc, str]]:
    """Groups whose realm is not the one phones are challenged in (RFC 7616 §3.3: the HA1
    values are of their own realm, so no response could ever match)."""
    return [
        (
            ("groups", gid, "realm"),
            f"realm {group.realm!r} is not trunks.yaml's digest realm {realm!r}: phones are "
            "challenged in that realm, so this group's could never authenticate",
        )
        for gid, group in centrex.groups.items()
        if group.realm != realm
    ]


def load_centrex(
    path: Path,
    *,
    customers: Mapping[str, CustomerConfig] | None = None,
    dialplan_numbers: Collection[str] = (),
    trunk_usernames: Collection[str] = (),
    realm: str | None = None,
) -> Centrex:
    """Load, validate and compile ``path`` (config/centrex.yaml); a missing file: no groups.

    ``customers``, ``trunk_usernames`` and ``realm`` (trunks.yaml's) and ``dialplan_numbers``
    (the numbers that have a dialplan file) are cross-checked when given (module docstring).

    Raises:
        OperatorFileError: every error as ``file:line: field: message``.
    """
    if not path.exists():
        return Centrex()
    data, lines = read_yaml(path, "groups of subscribers")
    try:
        file = CentrexFile.model_validate(data)
    except ValidationError as exc:
        raise OperatorFileError(describe_errors(str(path), exc, lines)) from exc
    centrex, errors = compile_centrex(file, dialplan_numbers, trunk_usernames)
    if customers is not None:
        errors += _customer_checks(centrex, customers)
    if realm is not None:
        errors += _realm_checks(centrex, realm)
    if errors:
        raise OperatorFileError(_describe(path, errors, lines))
    return centrex


def _describe(path: Path, errors: list[tuple[Loc, str]], lines: dict[Loc, int]) -> list[str]:
    out = []
    for loc, message in errors:
        line = line_of(lines, loc)
        field_name = ".".join(str(part) for part in loc)
        out.append((line, f"{path}:{line}: {field_name}: {message}"))
    return [text for _, text in sorted(out, key=lambda item: item[0])]


def load_customers(
    trunks_path: Path, centrex_path: Path, dialplan_numbers: Collection[str] = ()
) -> tuple[TrunksFile, Centrex]:
    """trunks.yaml and centrex.yaml, checked against each other (and the dialplan files'
    numbers); the trunks' customers with a group get the group's numbers.

    Raises:
        OperatorFileError: the errors of the first file that has any.
    """
    trunks = load_trunks(trunks_path)
    centrex = load_centrex(
        centrex_path,
        customers=trunks.customers,
        dialplan_numbers=dialplan_numbers,
        trunk_usernames=trunk_usernames(trunks),
        realm=trunks.digest.realm,
    )
    return with_group_numbers(trunks, centrex), centrex


def trunk_usernames(trunks: TrunksFile) -> list[str]:
    """The digest usernames trunks of ``trunks`` authenticate with (not the routes': those
    are the server's own credentials toward a carrier)."""
    return [trunk.digest.username for trunk in trunks.trunks.values() if trunk.digest]


def with_group_numbers(trunks: TrunksFile, centrex: Centrex) -> TrunksFile:
    """``trunks`` with each customer that has a Centrex group given the group's numbers."""
    customers = {
        name: customer.model_copy(update={"numbers": centrex.customer_numbers(name)})
        if any(group.customer == name for group in centrex.groups.values())
        else customer
        for name, customer in trunks.customers.items()
    }
    return trunks.model_copy(update={"customers": customers})
