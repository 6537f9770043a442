"""Reading a command: normalisation, spelling correction and the names it mentions.

:func:`normalize` lower-cases a command, strips punctuation around words and
corrects misspelt keywords (``alocate``, ``availble``, ``raduis``) against
:data:`VOCABULARY` with :mod:`difflib`. :func:`find_entities` then collects
what the command names, keeping the original case of ids and values.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from omnitwin.engine.agent.catalog import Catalog, DeviceMatch, resolve_device

__all__ = ["VOCABULARY", "Entities", "Normalized", "find_entities", "normalize"]

SPELLING_CUTOFF = 0.8

#: Keywords of the intent patterns; misspelt words are corrected to these.
_VOCABULARY_TEXT = """
    allocate allocation reserve carve provision claim available free unused
    unallocated spare unassigned space utilization utilisation usage capacity
    consumption drift drifted drifting mismatch reconcile reconciliation
    remediate blast radius breaks fails failure impact affected losing crashes
    reboots path paths shortest route reach reaches trace audit history
    changelog changes changed modified touched edited created allocated updated
    topology neighbors neighbours neighborhood around subgraph connected hops
    nearby graph import imports status show describe details display inspect
    information deprecate deprecated reserved rename update change owner
    purpose tags vlan trusting trust detected observed discovered twin intended
    interactive interactively which devices device subnet subnets blocks block
    find list search between happens service prefix address addresses
"""
VOCABULARY = frozenset(_VOCABULARY_TEXT.split())
#: Words left as they are although they are close to a keyword.
_KNOWN_WORDS_TEXT = """
    router routers switch switches server servers firewall firewalls routes
    there these those their other payments blocks pool pools team user owned
    users state states
"""
KNOWN_WORDS = frozenset(_KNOWN_WORDS_TEXT.split())
_STRIP = "\"'`,;!?()[]{}<>"
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NOT_DEVICES = frozenset({"ipv4", "ipv6", "v4", "v6", "l2", "l3", "24-bit"})
_CIDR_LIKE = re.compile(r"^[0-9a-f.:]*[.:][0-9a-f.:]*/\d{1,3}$")
_PREFIX = re.compile(r"^/(\d{1,3})(?:s|'s)?$")
_ID = re.compile(r"^(sn|dv|imp|lk|job)_[0-9A-Za-z]+$")
_ACTOR = re.compile(r"^(?:user|key|team|agent):\S+$")
_HOSTLIKE = re.compile(r"^[a-z][a-z0-9_-]*(?:\d[a-z0-9_.-]*|\.[a-z0-9_.-]+)$")
_PREPOSITIONS = ("in", "from", "inside", "within", "at", "under", "out of")
_LOCATION_STOP = frozenset(
    {"the", "a", "an", "our", "my", "of", "region", "site", "space", "please"}
)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A command as typed (``original``), as tokens, and as matching text.

    ``text`` is lower case with keywords corrected; ``tokens`` keep the
    original case, with surrounding punctuation removed.
    """

    original: str
    text: str
    tokens: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Entities:
    """The ids, names and values found in a command, in command order."""

    cidrs: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    prefixes: list[int] = field(default_factory=list)
    subnet_ids: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)
    import_ids: list[str] = field(default_factory=list)
    link_ids: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    device_texts: list[str] = field(default_factory=list)
    path_ends: list[str] = field(default_factory=list)
    location_terms: list[str] = field(default_factory=list)
    family: int | None = None
    limit: int | None = None
    depth: int | None = None
    purpose: str | None = None
    owner: str | None = None
    fields: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)


def _clean(token: str) -> str:
    token = token.strip(_STRIP)
    if token.endswith(".") or (token.endswith(":") and not token.endswith("::")):
        token = token[:-1]
    return token.strip(_STRIP)


def _catalog_words(catalog: Catalog) -> set[str]:
    words = {s.lower() for s in catalog.sites} | {r.lower() for r in catalog.regions}
    words |= {h.lower().split(".", 1)[0] for h in catalog.hostnames}
    return words


def normalize(command: str, catalog: Catalog) -> Normalized:
    """Split a command into tokens and correct misspelt keywords.

    Examples
    --------
    >>> from omnitwin.engine.agent.catalog import StaticCatalog
    >>> normalize("alocate a /24", StaticCatalog([], [], [], [])).text
    'allocate a /24'
    """
    spaced = re.sub(r"\s*(?:->|=>|\u2192)\s*", " to ", command.strip())
    tokens = [t for t in (_clean(raw) for raw in spaced.split()) if t]
    known: set[str] | None = None
    words: list[str] = []
    notes: list[str] = []
    for token in tokens:
        word = token.lower()
        if len(word) >= 4 and word.isalpha() and word not in VOCABULARY:
            if known is None:
                known = _catalog_words(catalog) | KNOWN_WORDS
            close = [] if word in known else _closest_keyword(word)
            if close:
                notes.append(f"read {word!r} as {close[0]!r}")
                word = close[0]
        words.append(word)
    return Normalized(command.strip(), " ".join(words), tokens, notes)


def _closest_keyword(word: str) -> list[str]:
    return difflib.get_close_matches(word, VOCABULARY, n=1, cutoff=SPELLING_CUTOFF)


def _is_cidr(token: str) -> bool:
    return bool(_CIDR_LIKE.match(token.lower()))


def _is_address(token: str) -> bool:
    try:
        ipaddress.ip_address(token)
    except ValueError:
        return False
    return True


def _classify(token: str, found: Entities, catalog: Catalog) -> None:
    lower = token.lower()
    prefix = _PREFIX.match(lower)
    id_match = _ID.match(token)
    if prefix:
        found.prefixes.append(int(prefix.group(1)))
    elif _is_cidr(token):
        found.cidrs.append(lower)
    elif _is_address(token):
        found.addresses.append(lower)
    elif id_match:
        kind = id_match.group(1)
        target = {
            "sn": found.subnet_ids,
            "dv": found.device_ids,
            "imp": found.import_ids,
            "lk": found.link_ids,
        }.get(kind)
        if target is not None:
            target.append(token)
        if kind == "dv":
            found.device_texts.append(token)
    elif _ACTOR.match(token):
        found.actors.append(token)
    elif lower in {s.lower() for s in catalog.sites}:
        found.sites.append(next(s for s in catalog.sites if s.lower() == lower))
    elif lower in {r.lower() for r in catalog.regions}:
        found.regions.append(next(r for r in catalog.regions if r.lower() == lower))
    elif lower not in _NOT_DEVICES and "=" not in lower:
        _classify_device(token, found, catalog)


def _classify_device(token: str, found: Entities, catalog: Catalog) -> None:
    lower = token.lower()
    if lower in VOCABULARY:
        return
    match = resolve_device(catalog, token, fuzzy=False)
    if isinstance(match, DeviceMatch):
        found.devices.append(match.hostname)
        found.device_texts.append(token)
    elif match or _HOSTLIKE.match(lower):
        found.device_texts.append(token)


def find_entities(norm: Normalized, catalog: Catalog) -> Entities:
    """Collect the CIDRs, prefix lengths, ids, names and values of a command."""
    found = Entities()
    for token in norm.tokens:
        _classify(token, found, catalog)
    text = norm.text
    found.family = _family(text)
    found.limit = _first_int(
        text,
        r"\b(?:first|top|limit|up to|at most|max|only)\s+(\d+)\b",
        r"(?<![/\d])\b(\d+)\s+(?:free|available|unused|spare|blocks|subnets|events|"
        r"changes)\b",
        r"\b(?:last|latest|newest)\s+(\d+)\b",
    )
    found.depth = _depth(text)
    found.path_ends = _path_ends(norm)
    found.location_terms = _location_terms(text)
    found.purpose, found.owner = _purpose_and_owner(norm.original)
    found.fields = _fields(norm.original)
    found.changes = _changes(norm, found)
    return found


def _family(text: str) -> int | None:
    if re.search(r"\b(?:ipv6|v6)\b", text):
        return 6
    if re.search(r"\b(?:ipv4|v4)\b", text):
        return 4
    return None


def _first_int(text: str, *patterns: str) -> int | None:
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return int(match.group(1))
    return None


def _depth(text: str) -> int | None:
    match = re.search(
        r"\b(?:within|depth(?: of)?|radius of)\s+(\d+|one|two|three|four|five)\b", text
    )
    match = match or re.search(r"\b(\d+|one|two|three|four|five)\s+hops?\b", text)
    if match is None:
        return None
    word = match.group(1)
    return _NUMBER_WORDS[word] if word in _NUMBER_WORDS else int(word)


def _path_ends(norm: Normalized) -> list[str]:
    tokens = norm.tokens
    lower = [t.lower() for t in tokens]
    for first, second in (("from", "to"), ("between", "and")):
        if first in lower:
            start = lower.index(first)
            if second in lower[start + 2 :]:
                middle = lower.index(second, start + 2)
                if middle + 1 < len(tokens):
                    return [tokens[middle - 1], tokens[middle + 1]]
    return []


def _location_terms(text: str) -> list[str]:
    pattern = (
        r"\b(?:" + "|".join(_PREPOSITIONS) + r")\s+(.+?)"
        r"(?=\s+(?:for|owned|with|tagged|using|and|or)\b|$)"
    )
    terms: list[str] = []
    for match in re.finditer(pattern, text):
        terms += [w for w in match.group(1).split() if w not in _LOCATION_STOP]
    return terms


_PURPOSE = re.compile(
    r"\bfor\s+(?:the\s+|a\s+|an\s+|our\s+|my\s+)?(.+?)"
    r"(?=\s+(?:in|from|inside|within|at|under|on|out\s+of|with|tagged|owned|using)\b"
    r"|[?.!]*$)",
    re.IGNORECASE,
)


def _purpose_and_owner(original: str) -> tuple[str | None, str | None]:
    owner_match = re.search(r"\bowned by\s+(\S+)", original, re.IGNORECASE)
    owner = _clean(owner_match.group(1)) if owner_match else None
    match = _PURPOSE.search(original)
    purpose = match.group(1).strip(_STRIP + ". ") if match else None
    if purpose and _ACTOR.match(purpose):
        return None, owner or purpose
    if purpose and re.match(r"^/\d+", purpose):
        purpose = None
    return purpose or None, owner


def _fields(original: str) -> list[str]:
    match = re.search(
        r"\b(?:only(?: the)?(?: fields?)?|fields?)\s+"
        r"([\w./-]+(?:\s*(?:,|and)\s*[\w./-]+)*)",
        original,
        re.IGNORECASE,
    )
    if match is None:
        return []
    names = re.split(r"\s*(?:,|\band\b)\s*", match.group(1))
    return [n for n in names if n and n.lower() not in ("field", "fields")]


def _changes(norm: Normalized, found: Entities) -> dict[str, Any]:
    text, original = norm.text, norm.original
    changes: dict[str, Any] = {}

    status = re.search(
        r"\b(?:mark|set|change|update)\b.*?\b(?:as|to|status)?\s*"
        r"(allocated|reserved|available|deprecated)\b",
        text,
    )
    if re.search(r"\bdeprecate\b", text):
        changes["status"] = "deprecated"
    elif status:
        changes["status"] = status.group(1)

    owner = re.search(
        r"\bowner\b(?:\s+of\s+\S+)?\s+(?:to|=|as|is)\s+(\S+)", original, re.IGNORECASE
    )
    if owner:
        changes["owner"] = _clean(owner.group(1))

    purpose = re.search(
        r"\b(?:purpose|description)\b(?:\s+of\s+\S+)?\s+(?:to|=|as)\s+(.+)$"
        r"|\brename\s+\S+\s+(?:to|as)\s+(.+)$",
        original,
        re.IGNORECASE,
    )
    if purpose:
        value = purpose.group(1) or purpose.group(2)
        changes["purpose"] = value.strip(_STRIP + ". ")

    vlan = re.search(
        r"\bvlan(?:_id| id)?\b(?:\s+of\s+\S+)?\s+(?:to|=|as)?\s*(\d{1,4})\b", text
    )
    if vlan:
        changes["vlan_id"] = int(vlan.group(1))

    tags = _tag_changes(norm)
    if tags:
        changes["tags"] = tags
    return changes


def _tag_changes(norm: Normalized) -> dict[str, str | None]:
    text = norm.text
    if not re.search(r"\b(?:tag|tags|tagged|label|retag|untag)\b", text):
        return {}
    removing = re.search(
        r"\b(?:untag|remove(?: the)? tags?|drop(?: the)? tags?)\b", text
    )
    tags: dict[str, str | None] = {}
    for token in norm.tokens:
        key, equals, value = token.partition("=")
        if equals and key and value:
            tags[key] = value
    if removing and not tags:
        match = re.search(r"\b(?:tags?)\s+([\w-]+)\s+from\b", text)
        if match:
            tags[match.group(1)] = None
    return tags


def strategy_of(text: str) -> list[str]:
    """Return the reconcile strategies that a command's wording names."""
    patterns = {
        "trust_detected": (
            r"\btrust_detected\b|\b(?:trust(?:ing)?|accept(?:ing)?|use|using|take|"
            r"taking|adopt(?:ing)?|prefer(?:ring)?|keep(?:ing)?|with|to)\s+(?:the\s+)?"
            r"(?:detected|observed|discovered|actual|live|running)\b|\bdetected wins\b"
        ),
        "trust_twin": (
            r"\btrust_twin\b|\b(?:trust(?:ing)?|keep(?:ing)?|enforce|enforcing|use|"
            r"using|prefer(?:ring)?|restore|restoring|with|to)\s+(?:the\s+)?"
            r"(?:twin|intent|intended|design)\b|\btwin wins\b"
        ),
        "interactive": (
            r"\binteractive(?:ly)?\b|\bask me\b|\blet me (?:decide|choose|review)\b|"
            r"\bfor review\b|\bwith review\b"
        ),
    }
    found = [name for name, pattern in patterns.items() if re.search(pattern, text)]
    nouns = {
        "trust_detected": r"\b(?:detected|observed|discovered)\b",
        "trust_twin": r"\b(?:twin|intent|intended)\b",
    }
    if found and all(re.search(pattern, text) for pattern in nouns.values()):
        # "trusting detected and the twin" names both sides.
        found = sorted({*found, *nouns})
    return found
