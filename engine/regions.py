"""Region tables (provinces, kecamatan NIK prefixes, Sukoharjo's kecamatan and villages).

Read once from the CSV files in ``engine/data/`` (see its README for sources and licence).
Everything is keyed by code: village names repeat within the regency.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent / "data"

VillageKind = Literal["desa", "kelurahan"]


@dataclass(frozen=True)
class District:
    """A kecamatan of the regency. ``code`` is dotted, e.g. ``33.11.01``."""

    code: str
    name: str
    desa_count: int
    kelurahan_count: int


@dataclass(frozen=True)
class Village:
    """A desa or kelurahan. ``code`` is ``PP.RR.DD.VVVV``, e.g. ``33.11.01.2001``."""

    code: str
    name: str
    kind: VillageKind
    district_code: str
    district_name: str
    postal_code: str


@dataclass(frozen=True)
class KecamatanInfo:
    """Where a 6-digit NIK prefix (kecamatan of first registration) lies."""

    nik_prefix: str
    code: str  # dotted, e.g. 33.11.01
    province: str
    regency: str
    district: str


def _rows(filename: str) -> list[dict[str, str]]:
    with (DATA_DIR / filename).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@cache
def _districts() -> tuple[District, ...]:
    return tuple(
        District(
            code=r["code"],
            name=r["name"],
            desa_count=int(r["desa_count"]),
            kelurahan_count=int(r["kelurahan_count"]),
        )
        for r in _rows("sukoharjo_districts.csv")
    )


@cache
def _villages() -> tuple[Village, ...]:
    out = []
    for r in _rows("sukoharjo.csv"):
        kind = r["kind"]
        if kind not in ("desa", "kelurahan"):
            raise ValueError(f"sukoharjo.csv: unknown kind {kind!r} for {r['code']}")
        out.append(
            Village(
                code=r["code"],
                name=r["name"],
                kind=kind,  # type: ignore[arg-type]
                district_code=r["district_code"],
                district_name=r["district_name"],
                postal_code=r["postal_code"],
            )
        )
    return tuple(out)


@cache
def _villages_by_code() -> dict[str, Village]:
    return {v.code: v for v in _villages()}


@cache
def _provinces() -> dict[str, str]:
    return {r["code"]: r["name"] for r in _rows("provinces.csv")}


@cache
def _nik_prefixes() -> dict[str, KecamatanInfo]:
    return {
        r["nik_prefix"]: KecamatanInfo(
            nik_prefix=r["nik_prefix"],
            code=r["code"],
            province=r["province"],
            regency=r["regency"],
            district=r["district"],
        )
        for r in _rows("kecamatan_nik_prefixes.csv")
    }


def districts() -> list[District]:
    """The 12 kecamatan of Kabupaten Sukoharjo, in code order."""
    return list(_districts())


def villages() -> list[Village]:
    """The 167 villages (150 desa, 17 kelurahan) of Kabupaten Sukoharjo, in code order."""
    return list(_villages())


def village(code: str) -> Village:
    """The village with this code; ``KeyError`` if there is none."""
    try:
        return _villages_by_code()[code]
    except KeyError:
        raise KeyError(f"Kode desa/kelurahan {code!r} tidak dikenal") from None


def provinces() -> dict[str, str]:
    """2-digit province code -> name (a copy: callers may not change the cache)."""
    return dict(_provinces())


def nik_prefixes() -> dict[str, KecamatanInfo]:
    """6-digit NIK prefix -> kecamatan info, for every kecamatan in Indonesia (a copy)."""
    return dict(_nik_prefixes())


def nik_prefix(prefix: str) -> KecamatanInfo | None:
    """Kecamatan info for one 6-digit prefix, without copying the whole table."""
    return _nik_prefixes().get(prefix)


def province_name(code: str) -> str | None:
    """Name of a 2-digit province code, without copying the table."""
    return _provinces().get(code)
