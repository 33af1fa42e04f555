"""NIK (Nomor Induk Kependudukan) parsing, checking, masking and generation.

A NIK is 16 digits: ``PPRRDD`` (kecamatan of first registration, never changes when a person
moves) + ``DDMMYY`` (birth date; women have 40 added to the day) + ``SSSS`` (serial from 0001).

Input is forgiving about how people type it: spaces (any whitespace), dots and dashes are
removed before checking, so ``"3311 0101 9001 0001"`` and ``"3311.010190.010001"`` are accepted.
Digit positions in errors are counted in the NIK after that removal (1-16), which is what an
operator counts on the KTP. Any other character is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from engine import regions
from engine.dates import today_wib
from engine.errors import SuratDesaError

Sex = Literal["L", "P"]

NIK_LENGTH = 16
_SEPARATORS = re.compile(r"[\s.\-]+")
# Indonesian Western Time has no daylight saving; a fixed offset needs no tz database.
_SEX_NAMES = {"L": "Laki-laki", "P": "Perempuan"}


class NikError(SuratDesaError, ValueError):
    """A NIK that cannot be right. ``code`` is a short English id for programs, ``position``
    the 1-based digit where it goes wrong (or None), ``message`` the Indonesian text for users."""

    def __init__(self, code: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.position = position
        self.message = message


@dataclass(frozen=True)
class ParsedNik:
    nik: str  # 16 digits, separators removed
    province_code: str  # digits 1-2
    regency_code: str  # digits 1-4
    district_prefix: str  # digits 1-6: kecamatan of first registration
    birth_date: date
    sex: Sex
    serial: str  # digits 13-16, "0001".."9999"
    province_name: str
    kecamatan: regions.KecamatanInfo | None = None
    warnings: tuple[str, ...] = field(default=())


def normalize_nik(text: str) -> str:
    """Remove spaces, dots and dashes. Does not check anything else."""
    return _SEPARATORS.sub("", text)


def parse_nik(text: str, *, today: date | None = None) -> ParsedNik:
    """Check a NIK and read what it encodes. Raises :class:`NikError`.

    ``today`` (default: today in WIB) decides the century: the birth year is the latest one
    ending in the NIK's two digits that is not in the future.
    """
    today = today or today_wib()
    nik = normalize_nik(text)
    if not nik:
        raise NikError("length", "NIK wajib diisi (16 digit)")
    for i, ch in enumerate(nik, start=1):
        if not ("0" <= ch <= "9"):  # str.isdigit() accepts other scripts' digits
            raise NikError(
                "not_digits",
                f"NIK hanya boleh berisi angka: karakter ke-{i} ({ch!r}) bukan angka",
                i,
            )
    if len(nik) != NIK_LENGTH:
        raise NikError(
            "length",
            f"NIK harus {NIK_LENGTH} digit, yang dimasukkan {len(nik)} digit",
            NIK_LENGTH + 1 if len(nik) > NIK_LENGTH else None,
        )

    province_code = nik[:2]
    province_name = regions.province_name(province_code)
    if province_name is None:
        raise NikError("province", f"Kode provinsi '{province_code}' (digit 1-2) tidak dikenal", 1)

    birth_date, sex = _birth_date(nik, today)

    serial = nik[12:]
    if serial == "0000":
        raise NikError("serial", "Nomor urut NIK (digit 13-16) tidak boleh 0000", 13)

    prefix = nik[:6]
    kecamatan = regions.nik_prefix(prefix)
    warnings: tuple[str, ...] = ()
    if kecamatan is None:
        warnings = (f"Kode kecamatan {prefix} tidak dikenal (mungkin kode lama)",)

    return ParsedNik(
        nik=nik,
        province_code=province_code,
        regency_code=nik[:4],
        district_prefix=prefix,
        birth_date=birth_date,
        sex=sex,
        serial=serial,
        province_name=province_name,
        kecamatan=kecamatan,
        warnings=warnings,
    )


def _birth_date(nik: str, today: date) -> tuple[date, Sex]:
    digits = nik[6:12]
    raw_day, month, yy = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    prefix = f"Tanggal lahir dalam NIK (digit 7-12: {digits}) tidak mungkin"
    sex: Sex = "P" if raw_day > 40 else "L"
    day = raw_day - 40 if sex == "P" else raw_day
    if not 1 <= day <= 31:
        raise NikError(
            "birth_date",
            f"{prefix}: hari {raw_day:02d} (laki-laki 01-31, perempuan 41-71)",
            7,
        )
    if not 1 <= month <= 12:
        raise NikError("birth_date", f"{prefix}: bulan {month:02d}", 9)
    # Latest century that is valid and not in the future; 2000 first (a leap year, 1900 not).
    for year in (2000 + yy, 1900 + yy):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate, sex
    shown_year = 1900 + yy if yy > today.year % 100 else 2000 + yy
    raise NikError("birth_date", f"{prefix}: {day:02d}-{month:02d}-{shown_year}", 7)


def check_nik_matches(parsed: ParsedNik, birth_date: date | None, sex: str | None) -> list[str]:
    """Indonesian messages for each way a registry record disagrees with its NIK.

    Only the last two digits of the year are compared: the NIK does not carry the century.
    ``None`` skips a check (the registry does not know the value).
    """
    problems: list[str] = []
    if sex is not None:
        if sex not in _SEX_NAMES:
            raise ValueError(f"sex must be 'L' or 'P', not {sex!r}")
        if sex != parsed.sex:
            problems.append(
                f"Jenis kelamin di data penduduk ({_SEX_NAMES[sex]}) tidak cocok dengan "
                f"NIK ({_SEX_NAMES[parsed.sex]}, digit 7-8: {parsed.nik[6:8]})"
            )
    if birth_date is not None:
        nb = parsed.birth_date
        if (birth_date.day, birth_date.month, birth_date.year % 100) != (
            nb.day,
            nb.month,
            nb.year % 100,
        ):
            problems.append(
                f"Tanggal lahir di data penduduk ({birth_date:%d-%m-%Y}) tidak cocok dengan "
                f"NIK (digit 7-12: {parsed.nik[6:12]}, {nb:%d-%m-%y})"
            )
    return problems


def mask_nik(nik: str) -> str:
    """``3311********0001`` for public pages: first 4 and last 4 digits only.

    Never raises: anything too short to mask safely becomes all asterisks.
    """
    nik = normalize_nik(nik)
    if len(nik) <= 8:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 8) + nik[-4:]


def make_nik(district_prefix: str, birth_date: date, sex: str, serial: int) -> str:
    """Build a NIK (for demo data and tests). ``district_prefix`` is 6 digits or dotted
    ``33.11.01``; ``serial`` is 1-9999."""
    prefix = district_prefix.replace(".", "")
    if len(prefix) != 6 or not prefix.isascii() or not prefix.isdigit():
        raise ValueError(f"district_prefix must be 6 digits, not {district_prefix!r}")
    if sex not in _SEX_NAMES:
        raise ValueError(f"sex must be 'L' or 'P', not {sex!r}")
    if not 1 <= serial <= 9999:
        raise ValueError(f"serial must be 1-9999, not {serial}")
    day = birth_date.day + (40 if sex == "P" else 0)
    return f"{prefix}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{serial:04d}"
