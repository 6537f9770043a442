"""Drift between a device's twin state and its detected state.

Both states use the canonical device state shape described in
:mod:`omnitwin.engine.discovery.model`. They are compared field by field:

- Nested maps become dotted paths, such as ``interfaces.Ethernet1.mtu``. A
  dot or backslash inside a map key is escaped with a backslash, so the
  sub-interface ``Ethernet1/1.2003`` gives the path
  ``interfaces.Ethernet1/1\\.2003.mtu``. :func:`join_path` and
  :func:`split_path` build and take apart such paths.
- A list of scalars is a set of names: order and duplicates are ignored, and
  the whole set is one field. An element missing from the detected set is
  drift, as is an extra one.
- A field present in the twin and observed with another value is drift.
- A field in the twin but absent from the detected state, or None there, was
  not observed and is not compared.
- A field only in the detected state is enrichment, not drift.
- Observation metadata (:data:`METADATA_KEYS`) is never compared, at any
  depth. ``uptime_s`` is skipped through :data:`DEFAULT_IGNORED`.

The score is the weighted share of compared fields that diverge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from omnitwin.errors import ValidationError

__all__ = [
    "DEFAULT_IGNORED",
    "METADATA_KEYS",
    "Difference",
    "DriftReport",
    "compare",
    "flatten",
    "join_path",
    "split_path",
]

METADATA_KEYS: frozenset[str] = frozenset({"last_seen", "source", "observed_at"})
DEFAULT_IGNORED: tuple[str, ...] = ("uptime_s",)

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Difference:
    """One field whose observed value differs from the twin's.

    Attributes
    ----------
    field : str
        The dotted path of the field.
    twin_value : Any
        The twin's value. Sets of names are given as sorted lists.
    actual_value : Any
        The observed value, in the same form.
    """

    field: str
    twin_value: Any
    actual_value: Any


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The result of comparing a twin state with a detected state.

    Attributes
    ----------
    differences : list of Difference
        The diverging fields, sorted by path.
    compared : int
        How many fields were present on both sides and compared.
    score : float or None
        The weighted share of compared fields that diverge, from 0.0 (in
        sync) to 1.0. None when nothing could be compared, for example when
        the device was never observed, or when every compared field weighs 0.
    """

    differences: list[Difference] = field(default_factory=list)
    compared: int = 0
    score: float | None = None

    @property
    def drifted(self) -> bool:
        """True when at least one compared field diverges."""
        return bool(self.differences)


def join_path(segments: Iterable[str]) -> str:
    """Join map keys into a dotted path, escaping dots and backslashes.

    Examples
    --------
    >>> join_path(["interfaces", "Ethernet1/1.2003", "mtu"])
    'interfaces.Ethernet1/1\\\\.2003.mtu'
    """
    return ".".join(s.replace("\\", "\\\\").replace(".", "\\.") for s in segments)


def split_path(path: str) -> list[str]:
    """Split a dotted path made by :func:`join_path` back into map keys.

    Examples
    --------
    >>> split_path(r"interfaces.Ethernet1/1\\.2003.mtu")
    ['interfaces', 'Ethernet1/1.2003', 'mtu']
    """
    segments: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            current.append(next(chars, "\\"))
        elif char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def flatten(state: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a nested state into a map of dotted path to value.

    Parameters
    ----------
    state : mapping
        A device state in the canonical shape.

    Returns
    -------
    dict
        Path to value. A list of scalars becomes a sorted list without
        duplicates. A list that contains maps or lists is kept as it is and
        compared in order. Empty maps and None values produce no entry.

    Examples
    --------
    >>> flatten({"hostname": "sw1", "neighbors": ["b", "a", "b"],
    ...          "interfaces": {"Ethernet1": {"mtu": 9000}}})
    {'hostname': 'sw1', 'neighbors': ['a', 'b'], 'interfaces.Ethernet1.mtu': 9000}
    """
    flat: dict[str, Any] = {}
    _flatten_into(flat, [], state)
    return flat


def compare(
    twin: Mapping[str, Any] | None,
    detected: Mapping[str, Any] | None,
    *,
    ignore: Iterable[str] = DEFAULT_IGNORED,
    weights: Mapping[str, float] | None = None,
) -> DriftReport:
    """Compare a twin state with a detected state field by field.

    Parameters
    ----------
    twin : mapping or None
        The intended state. None counts as an empty state.
    detected : mapping or None
        The observed state. None or an empty map means never observed.
    ignore : iterable of str, default DEFAULT_IGNORED
        Paths or :mod:`fnmatch` patterns to skip. A pattern also skips every
        path below it, so ``"interfaces"`` skips all interface fields.
        Passing a new value replaces the default, so include ``"uptime_s"``
        to keep skipping it.
    weights : mapping of str to float, optional
        Weight per path or pattern, matched like `ignore`. An exact path wins
        over patterns, and otherwise the first matching pattern in mapping
        order applies. Unmatched fields weigh 1.0.

    Returns
    -------
    DriftReport
        The diverging fields, the number of compared fields and the score.

    Raises
    ------
    ValidationError
        If a weight is negative, infinite or not a number.

    Examples
    --------
    >>> twin = {"hostname": "sw1", "interfaces": {"Ethernet1": {"mtu": 1500}}}
    >>> seen = {"hostname": "sw1", "interfaces": {"Ethernet1": {"mtu": 9000}},
    ...         "serial": "FOC123"}
    >>> report = compare(twin, seen)
    >>> report.differences
    [Difference(field='interfaces.Ethernet1.mtu', twin_value=1500, actual_value=9000)]
    >>> report.compared, report.score
    (2, 0.5)
    """
    weight_rules = _validate_weights(weights or {})
    patterns = tuple(ignore)
    twin_flat = flatten(twin or {})
    detected_flat = flatten(detected or {})

    differences: list[Difference] = []
    compared = 0
    total_weight = 0.0
    diverging_weight = 0.0
    for path in sorted(twin_flat.keys() & detected_flat.keys()):
        if _matches_any(path, patterns):
            continue
        weight = _weight_for(path, weight_rules)
        compared += 1
        total_weight += weight
        twin_value, actual = twin_flat[path], detected_flat[path]
        if not _values_equal(twin_value, actual):
            differences.append(Difference(path, twin_value, actual))
            diverging_weight += weight

    score = diverging_weight / total_weight if total_weight > 0 else None
    return DriftReport(differences=differences, compared=compared, score=score)


def _flatten_into(flat: dict[str, Any], prefix: list[str], value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key) in METADATA_KEYS:
                continue
            _flatten_into(flat, [*prefix, str(key)], item)
    elif value is None:
        return
    elif isinstance(value, list | tuple | set | frozenset):
        flat[join_path(prefix)] = _as_set(value) if _all_scalars(value) else value
    else:
        flat[join_path(prefix)] = value


def _all_scalars(values: Iterable[Any]) -> bool:
    return all(isinstance(v, _SCALARS) for v in values)


def _as_set(values: Iterable[Any]) -> list[Any]:
    unique = {(type(v).__name__, v) for v in values}
    return [v for _, v in sorted(unique, key=lambda item: (item[0], str(item[1])))]


def _values_equal(left: Any, right: Any) -> bool:
    # Python treats True == 1, but a boolean field observed as 1 is still drift.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _matches(path: str, pattern: str) -> bool:
    if path == pattern or path.startswith(pattern + "."):
        return True
    return fnmatchcase(path, pattern) or fnmatchcase(path, pattern + ".*")


def _matches_any(path: str, patterns: tuple[str, ...]) -> bool:
    return any(_matches(path, pattern) for pattern in patterns)


def _validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    rules: dict[str, float] = {}
    for pattern, weight in weights.items():
        valid = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not valid or not math.isfinite(weight) or weight < 0:
            message = (
                f"invalid drift weight {weight!r} for {pattern!r}: expected a "
                "finite number of 0 or more, such as 1.0"
            )
            raise ValidationError(message, details={"pattern": pattern})
        rules[pattern] = float(weight)
    return rules


def _weight_for(path: str, rules: dict[str, float]) -> float:
    if path in rules:
        return rules[path]
    for pattern, weight in rules.items():
        if _matches(path, pattern):
            return weight
    return 1.0
