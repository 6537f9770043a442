"""Prefixed, time-sortable identifiers (ULIDs), such as ``sn_01J9...``."""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
# The RFC 4648 base32 alphabet mapped, digit by digit, to Crockford's.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_MAX_RANDOM = (1 << 80) - 1
_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int) -> str:
    """Return the 26 Crockford base32 digits of ``value``, which is below 2**130.

    base64.b32encode turns 20 bytes into 32 digits of 5 bits each, so the
    last 26 of them are the low 130 bits of the number.
    """
    digits = base64.b32encode(value.to_bytes(20, "big"))[6:]
    return digits.translate(_TO_CROCKFORD).decode("ascii")


def new_ulid() -> str:
    """Return a 26-character ULID, monotonic within this process."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms and _last_random < _MAX_RANDOM:
            # Same millisecond (or a clock step back): increment the random
            # part so that ids created in a row still sort in creation order.
            now_ms = _last_ms
            random_part = _last_random + 1
        else:
            # A random part at its maximum moves on to the next millisecond
            # instead of wrapping to zero, which would sort first.
            now_ms = max(now_ms, _last_ms + 1)
            random_part = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_random = now_ms, random_part
    return _encode(now_ms << 80 | random_part)


def new_id(prefix: str) -> str:
    """Return a new identifier such as ``sn_01J9Z...`` for the given prefix."""
    return f"{prefix}_{new_ulid()}"
