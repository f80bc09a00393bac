"""Number lists of callers: the blacklist (global and per dialplan) and allow/VIP lists.

Theory of operation
-------------------
A ``NumberList`` is a set of entries, each one of:

===============================  =========  =================================================
written                          kind       matches
===============================  =========  =================================================
``+38761123456``, ``1282``       exact      that number, however written: ``061 123 456``,
                                            ``0038761123456`` and ``38761123456`` are one
``+3876112*``, ``0038590*``      prefix     every number that begins with it (and itself);
                                            ``06*`` every BiH mobile, ``+*`` every E.164 caller
``anonymous``                    anonymous  every withheld caller (``CallerId.withheld``)
===============================  =========  =================================================

Numbers and prefixes normalise with ``numbering.normalise`` (national numbers take the
country code, ``+387`` by default). A prefix must say where it belongs, with ``+``, ``00`` or
the national ``0``: a bare ``387*`` could mean +387 or the short codes 387..., so it is refused.
Text after ``#`` on an entry's line is its *reason* (``+38761123456  # nuisance, ticket 4711``),
which a hit carries into the CDR.

``NumberList.match(caller)`` looks up ``CallerId.key`` (the E.164 number, else the short code
in From): an exact entry wins, then the longest prefix; only when no number entry matches does
``anonymous`` catch a withheld caller. Entries compile into two dicts, exact keys and prefix
keys, and a lookup tries the key and then each shorter beginning of it, so a match costs one
dict lookup per digit of the number, whatever the size of the list. When an entry repeats (in a
list, or across lists given to ``merge``), the first one is kept, with its reason.

Sources. ``config/blacklist.txt`` (``parse_blacklist``): one entry a line, blank lines and
lines starting with ``#`` ignored. A dialplan's list (``NumberList.from_entries``): a YAML list
of the same strings, quoted (an unquoted ``061123456`` is an octal integer to YAML, and an
unquoted ``# reason`` is a YAML comment). Every bad entry is reported at once in one
``NumberListError``: ``config/blacklist.txt:12: '06x12' is not a number or prefix ...``, or for
a dialplan ``dialplans/38733123.yaml: blacklist.3: ...`` with the field path kept in
``EntryProblem.path`` for the loader to map to a line.

One type, two uses. A blacklist and an allow/VIP list (key customers routed to their own step)
are the same thing, a list of numbers to recognise a caller by; what a hit does is the
dialplan's business. So the type is ``NumberList``, and ``Blacklist``, ``BlacklistHit``,
``BlacklistError`` and ``parse_blacklist`` are aliases of it and its companions, for the code
that reads as blacklisting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from callserver.policy.caller import CallerId
from callserver.policy.numbering import BIH_COUNTRY_CODE, normalise, parse_pattern

__all__ = [
    "Blacklist",
    "BlacklistError",
    "BlacklistHit",
    "EntryKind",
    "EntryProblem",
    "FieldPath",
    "NumberList",
    "NumberListEntry",
    "NumberListError",
    "NumberListHit",
    "parse_blacklist",
    "parse_number_list",
]

FieldPath = tuple[str | int, ...]
"""Where a value sits in a YAML document: ``("blacklist", 3)``."""

_ANONYMOUS = "anonymous"
_BARE_START = frozenset("123456789")  # a bare prefix: neither +, 00 nor the national 0
_SYNTAX = "(digits, an optional leading +, an optional trailing *)"


class EntryKind(StrEnum):
    """What an entry matches: one number, the numbers under a prefix, or withheld callers."""

    EXACT = "exact"
    PREFIX = "prefix"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberListEntry:
    """One entry: ``text`` as written (without its comment), its ``key`` ("" for anonymous).

    ``reason`` is the comment after ``#`` (None without one); ``where`` names the entry's
    place, ``config/blacklist.txt:12`` or ``dialplans/38733123.yaml: blacklist.3``.
    """

    text: str
    kind: EntryKind
    key: str
    reason: str | None = None
    where: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberListHit:
    """A caller found on a list: the ``entry`` that matched and the caller ``number`` it matched.

    ``number`` is the caller's key (``CallerId.key``), None when ``anonymous`` matched.
    """

    entry: NumberListEntry
    number: str | None

    @property
    def reason(self) -> str | None:
        """The entry's reason (its ``#`` comment), for the CDR; None when it has none."""
        return self.entry.reason

    @property
    def summary(self) -> str:
        """One line for the CDR and logs: ``'+3876112*' (config/blacklist.txt:4): nuisance``."""
        head = repr(self.entry.text)
        if self.entry.where:
            head += f" ({self.entry.where})"
        return f"{head}: {self.entry.reason}" if self.entry.reason else head


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryProblem:
    """One bad entry: where it is (``line`` of a file or ``path`` in a YAML document) and why."""

    source: str
    message: str
    line: int | None = None
    path: FieldPath = ()

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}: {self.message}"
        return f"{self.source}: {_field(self.path)}: {self.message}"


class NumberListError(ValueError):
    """A list has bad entries; ``problems`` holds every one, ``errors`` their sentences."""

    def __init__(self, problems: Sequence[EntryProblem]) -> None:
        self.problems = tuple(problems)
        self.errors = [str(problem) for problem in self.problems]
        super().__init__("\n".join(self.errors))


class NumberList:
    """Entries compiled for lookup by caller (see the module docstring).

    Args:
        entries: the entries, in order of precedence: of two with the same key (or two
            ``anonymous``), the first is kept.
    """

    __slots__ = ("_anonymous", "_entries", "_exact", "_longest_prefix", "_prefixes")

    def __init__(self, entries: Iterable[NumberListEntry] = ()) -> None:
        self._exact: dict[str, NumberListEntry] = {}
        self._prefixes: dict[str, NumberListEntry] = {}
        self._anonymous: NumberListEntry | None = None
        kept: list[NumberListEntry] = []
        for entry in entries:
            if self._add(entry):
                kept.append(entry)
        self._entries = tuple(kept)
        self._longest_prefix = max(map(len, self._prefixes), default=0)

    def _add(self, entry: NumberListEntry) -> bool:
        if entry.kind is EntryKind.ANONYMOUS:
            if self._anonymous is not None:
                return False
            self._anonymous = entry
            return True
        table = self._exact if entry.kind is EntryKind.EXACT else self._prefixes
        return table.setdefault(entry.key, entry) is entry

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[str],
        source: str,
        *,
        path: FieldPath = (),
        country_code: str = BIH_COUNTRY_CODE,
    ) -> NumberList:
        """A list from a dialplan's YAML list of entries (same syntax as a file's lines).

        Args:
            entries: the strings, each ``entry`` or ``entry # reason``.
            source: the file they came from, as errors should print it.
            path: the list's field path in that file (``("blacklist",)``); a problem's path
                is this plus the entry's index.
            country_code: the country code of national numbers.

        Raises:
            NumberListError: every bad entry, each with its path.
        """
        compiled: list[NumberListEntry] = []
        problems: list[EntryProblem] = []
        for index, item in enumerate(entries):
            where = (*path, index)
            try:
                if not isinstance(item, str):
                    raise ValueError(f"{item!r} is not text: quote numbers in YAML ('061123456')")
                compiled.append(_entry(item, f"{source}: {_field(where)}", country_code))
            except ValueError as exc:
                problems.append(EntryProblem(source=source, message=str(exc), path=where))
        if problems:
            raise NumberListError(problems)
        return cls(compiled)

    @classmethod
    def merge(cls, *lists: NumberList) -> NumberList:
        """One list of all entries of ``lists``; on a repeated entry the earlier list's wins.

        Give the global list first to keep its reasons, as in ``Blacklist.merge(global_, own)``.
        """
        return cls(entry for number_list in lists for entry in number_list.entries)

    @property
    def entries(self) -> tuple[NumberListEntry, ...]:
        """The entries kept, in order (repeats dropped)."""
        return self._entries

    def match(self, caller: CallerId) -> NumberListHit | None:
        """The entry that matches ``caller``: exact, else longest prefix, else ``anonymous``.

        Numbers match on ``caller.key`` (E.164 when known, RFC 3325 P-Asserted-Identity
        first; else the short code in From); ``anonymous`` matches a ``caller.withheld``.

        Returns:
            The hit, or None when the caller is not on the list.
        """
        key = caller.key
        if key is not None:
            entry = self._exact.get(key) or self._prefix_entry(key)
            if entry is not None:
                return NumberListHit(entry=entry, number=key)
        if caller.withheld and self._anonymous is not None:
            return NumberListHit(entry=self._anonymous, number=None)
        return None

    def _prefix_entry(self, key: str) -> NumberListEntry | None:
        for end in range(min(len(key), self._longest_prefix), 0, -1):
            entry = self._prefixes.get(key[:end])
            if entry is not None:
                return entry
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __repr__(self) -> str:
        return f"NumberList({len(self._entries)} entries)"


def parse_number_list(
    text: str, source: str, *, country_code: str = BIH_COUNTRY_CODE
) -> NumberList:
    """A list from a file's text, such as config/blacklist.txt (the caller reads the file).

    Args:
        text: the file's content: one entry a line, ``#`` comments, blank lines.
        source: the file's path as errors should print it (``config/blacklist.txt``).
        country_code: the country code of national numbers.

    Raises:
        NumberListError: every bad line, each as ``source:line: message``.
    """
    compiled: list[NumberListEntry] = []
    problems: list[EntryProblem] = []
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            compiled.append(_entry(stripped, f"{source}:{number}", country_code))
        except ValueError as exc:
            problems.append(EntryProblem(source=source, message=str(exc), line=number))
    if problems:
        raise NumberListError(problems)
    return NumberList(compiled)


def _field(path: FieldPath) -> str:
    """A field path as text: ``blacklist.3``; a bare index reads ``entry 3``."""
    if len(path) == 1 and isinstance(path[0], int):
        return f"entry {path[0]}"
    return ".".join(str(part) for part in path)


def _entry(written: str, where: str, country_code: str) -> NumberListEntry:
    """Compile one ``entry  # reason`` string.

    Raises:
        ValueError: the entry is empty, or not a number, prefix or ``anonymous``.
    """
    body, _, comment = written.partition("#")
    text = body.strip()
    kind, key = _compile(text, country_code)
    reason = comment.strip() or None
    return NumberListEntry(text=text, kind=kind, key=key, reason=reason, where=where)


def _compile(text: str, country_code: str) -> tuple[EntryKind, str]:
    if not text:
        raise ValueError("the entry is empty: write a number, a prefix ending in *, or anonymous")
    if text.lower() == _ANONYMOUS:
        return EntryKind.ANONYMOUS, ""
    if text.endswith("*"):
        return EntryKind.PREFIX, _prefix_key(text, country_code)
    try:
        return EntryKind.EXACT, normalise(text, country_code=country_code)
    except ValueError:
        raise ValueError(f"{text!r} is not a number or prefix {_SYNTAX}") from None


def _prefix_key(text: str, country_code: str) -> str:
    """The key of ``text`` (ending in ``*``); ``numbering.parse_pattern`` without wildcards."""
    body = text[:-1]
    if body.lstrip(" \t(")[:1] in _BARE_START:
        raise ValueError(
            f"{text!r} is a prefix without +, 00 or 0: write an international prefix with "
            "+ or 00 (+387*) or a national one with 0 (061*)"
        )
    try:
        key = parse_pattern(body, country_code=country_code).key
    except ValueError:
        key = "x"
    if "x" in key:
        raise ValueError(f"{text!r} is not a number or prefix {_SYNTAX}")
    return key


Blacklist = NumberList
"""A blacklist is a ``NumberList`` (see the module docstring)."""
BlacklistHit = NumberListHit
"""A blacklist hit is a ``NumberListHit``."""
BlacklistError = NumberListError
"""A bad blacklist raises ``NumberListError``."""
parse_blacklist = parse_number_list
"""``parse_number_list`` for config/blacklist.txt."""
