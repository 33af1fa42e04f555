"""Rate limits of the public citizen pages, counted in the database (engine.ratelimit sliding
windows) so every app process sees the same counts. A key over its allowance is refused
(TooManyAttempts, 429) without the check it asked for; the window slides, so every limit lifts
by itself. Keys that come from what someone typed (a NIK) are counted by digest: the table never
holds them, and a NIK is counted whether or not it is registered, so the counts say nothing
about who exists."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection

from engine.errors import TooManyAttempts
from engine.ratelimit import SlidingWindow, window_add, window_counts

SLOT = 60  # seconds
WINDOW_SLOTS = 15  # a 15-minute window
TOO_MANY = (
    "Terlalu banyak percobaan. Tunggu sekitar 15 menit lalu coba lagi, atau datang ke kantor "
    "desa/kelurahan."
)


@dataclass(frozen=True)
class Rule:
    window: SlidingWindow
    allowance: int  # counts inside the window before the key is refused


def rule(bucket: str, allowance: int) -> Rule:
    return Rule(SlidingWindow(bucket, SLOT, WINDOW_SLOTS), allowance)


# Identification: failures per client address and per NIK.
IDENTIFY_ADDRESS = rule("warga_id_addr", 20)
IDENTIFY_NIK = rule("warga_id_nik", 5)
# Status look-ups by tracking code: every look-up, and the ones that found nothing, per address.
STATUS_ADDRESS = rule("warga_st_addr", 120)
STATUS_MISS = rule("warga_st_miss", 10)


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"warga\x00{kind}\x00{value}".encode()).hexdigest()[:40]


def refuse_if_over(conn: Connection, keys: dict[Rule, str], now: float) -> None:
    counts = window_counts(conn, [(r.window, k) for r, k in keys.items()], now)
    for r, key in keys.items():
        if sum(n for _, n in counts[(r.window.bucket, key[:64])]) >= r.allowance:
            raise TooManyAttempts(TOO_MANY)


def count(conn: Connection, keys: dict[Rule, str], now: float) -> None:
    for r, key in keys.items():
        window_add(conn, r.window, key, now)
