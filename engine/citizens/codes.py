"""Tracking codes for citizen requests: 80 random bits written as 16 Crockford base32 characters
in four groups (``7K3M-Q9TD-2XHN-V0PA``), easy to read out and type on a phone. Only the SHA-256
of a code is stored; the code itself is shown to the resident once (and as a QR)."""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
BITS = 80
LENGTH = BITS // 5  # 16 characters
GROUP = 4
# What people type for what they mean (Crockford's decoding rules).
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_code() -> str:
    """A fresh code, grouped for reading: XXXX-XXXX-XXXX-XXXX."""
    value = secrets.randbits(BITS)
    chars = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(LENGTH)))
    return group(chars)


def group(chars: str) -> str:
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def normalize(text: object) -> str | None:
    """The 16 code characters from what someone typed (any case, spaces or dashes, I/L read as
    1 and O as 0), or None when it cannot be a code."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    chars = "".join(ch for ch in text.upper() if ch not in " -_.").translate(_READ_AS)
    if len(chars) != LENGTH or any(ch not in ALPHABET for ch in chars):
        return None
    return chars


def code_hash(chars: str) -> str:
    """The stored form of a normalized code."""
    return hashlib.sha256(b"suratdesa-tracking\x00" + chars.encode()).hexdigest()
