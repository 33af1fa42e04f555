"""Indonesian date and time wording for letters. Times are WIB (Asia/Jakarta)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")

BULAN = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
HARI = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")


def format_tanggal(d: date) -> str:
    """28 November 2026 (an aware datetime is first converted to WIB)."""
    if isinstance(d, datetime) and d.tzinfo is not None:
        d = d.astimezone(WIB)
    return f"{d.day} {BULAN[d.month - 1]} {d.year}"


def nama_hari(d: date) -> str:
    """Day name: Sabtu for 28 November 2026."""
    if isinstance(d, datetime) and d.tzinfo is not None:
        d = d.astimezone(WIB)
    return HARI[d.weekday()]


def format_jam(t: time | datetime) -> str:
    """14.30 WIB (Indonesian uses a dot between hours and minutes)."""
    if isinstance(t, datetime):
        t = (t.astimezone(WIB) if t.tzinfo is not None else t).time()
    return f"{t.hour:02d}.{t.minute:02d} WIB"


def format_wib(at: datetime | None, *, seconds: bool = False) -> str:
    """A moment as staff and the public read it: "29-11-2026 14.30 WIB" (with seconds:
    "29-11-2026 14.30.05 WIB"). Stored times are UTC; a naive one is taken as UTC. The one
    formatting of a time on every page (staff app and public portal); None gives ""."""
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(WIB)
    clock = f"{local:%H.%M.%S}" if seconds else f"{local:%H.%M}"
    return f"{local:%d-%m-%Y} {clock} WIB"


def roman_month(m: int) -> str:
    """XI for 11; the month part of a letter number."""
    if not 1 <= m <= 12:
        raise ValueError(f"month must be 1..12, not {m}")
    return _ROMAN[m - 1]


def today_wib() -> date:
    return datetime.now(WIB).date()
