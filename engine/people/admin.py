"""Administrative writes that are not about one account or key: a village's letterhead data
(and its head's name and NIP, as printed on letters; the hand-over of a letter is
engine.letters.pickup). Also how the regency admin names a village: by name, with search
(`search_villages`, `village_choice`, `resolve_village`), never by typing its code. Each
write appends its audit event in the same transaction; faces only parse the input, call
these and render."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.errors import Forbidden, InvalidInput, NotFound
from engine.people.users import Actor, active_head, audit_admin, update_user
from engine.storage.models import District, Village

VILLAGE_CODE = re.compile(r"\b(\d{2}\.\d{2}\.\d{2}\.\d{4})\b")
_KIND_WORDS = ("desa ", "kelurahan ", "kel. ", "ds. ")


def village_choice(village: Village) -> str:
    """How a village is offered and picked: "Desa Grogol, Kec. Weru (33.11.01.2001)". Two
    villages may share a name (Grogol in Kec. Weru and in Kec. Grogol): the kecamatan and the
    code tell them apart, and `resolve_village` reads this text back."""
    kind = "Desa" if village.kind == "desa" else "Kelurahan"
    return f"{kind} {village.name}, Kec. {village.district.name} ({village.code})"


def search_villages(session: Session, query: str, *, limit: int = 20) -> list[Village]:
    """Villages whose name, kecamatan or code contains `query` (case-insensitive): name
    matches first, then those of a matching kecamatan; at most `limit`. Empty query: the
    first `limit` by name."""
    text = _bare_name(query)
    base = select(Village).join(District, Village.district_code == District.code)
    if not text:
        return list(session.scalars(base.order_by(Village.name, Village.code).limit(limit)))
    pattern = f"%{_escape_like(text)}%"
    by_name = func.lower(Village.name).like(pattern, escape="\\")
    matches = base.where(
        or_(
            by_name,
            func.lower(District.name).like(pattern, escape="\\"),
            Village.code.like(f"{_escape_like(text)}%", escape="\\"),
        )
    )
    ordered = matches.order_by(by_name.desc(), Village.name, Village.code).limit(limit)
    return list(session.scalars(ordered))


def resolve_village(session: Session, text: str | None) -> str | None:
    """The code of the village the admin picked or typed: a `village_choice` text, a code, or
    a name ("Kenep", "Desa Grogol, Kec. Weru"). None for an empty field. An unknown name, or
    a name two villages share without the kecamatan, is refused with the choices."""
    text = (text or "").strip()
    if not text:
        return None
    code = VILLAGE_CODE.search(text)
    if code is not None:
        if session.get(Village, code.group(1)) is None:
            raise InvalidInput(
                f"Desa/kelurahan tidak dikenal: {code.group(1)}.",
                {"village": "Pilih desa/kelurahan dari daftar."},
            )
        return code.group(1)
    name, _, district = text.partition(",")
    district = district.strip().lower().removeprefix("kec.").removeprefix("kecamatan").strip()
    query = select(Village).join(District, Village.district_code == District.code)
    query = query.where(func.lower(Village.name) == _bare_name(name))
    if district:
        query = query.where(func.lower(District.name) == district)
    found = list(session.scalars(query.order_by(Village.code).limit(10)))
    if len(found) == 1:
        return found[0].code
    if not found:
        raise InvalidInput(
            f"Desa/kelurahan tidak dikenal: {text!r}. Ketik sebagian namanya lalu pilih dari "
            "daftar.",
            {"village": "Pilih desa/kelurahan dari daftar."},
        )
    choices = "; ".join(village_choice(v) for v in found)
    raise InvalidInput(
        f"Ada {len(found)} desa/kelurahan bernama {found[0].name}: {choices}. Pilih salah satu.",
        {"village": "Pilih desa/kelurahan dari daftar."},
    )


def _bare_name(text: str) -> str:
    text = " ".join((text or "").split()).lower()
    for word in _KIND_WORDS:
        text = text.removeprefix(word)
    return text.strip()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def update_village(
    session: Session,
    by: Actor,
    code: str,
    *,
    address: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    website: str | None = None,
    head_name: str | None = None,
    head_nip: str | None = None,
) -> dict[str, dict]:
    """Edit a village's letterhead address and contact lines (phone, email, website: each
    checked, empty to print none) and its head's name/NIP (None: leave as is).
    Returns {"village": changes, "head": changes}; each changed record gets its own audit
    event ("village.update", "user.update"), an unchanged one none."""
    if by.role != "admin":
        raise Forbidden("Hanya admin kabupaten yang mengubah data desa/kelurahan.")
    village = session.scalar(
        select(Village).where(Village.code == code).with_for_update(of=Village)
    )
    if village is None:
        raise NotFound(f"Desa/kelurahan tidak ditemukan: {code}")
    changes: dict[str, list] = {}
    if address is not None:
        address = address.strip()
        if len(address) > 200:
            raise InvalidInput("Alamat terlalu panjang.", {"address": "Maksimal 200 karakter."})
        if address != village.address:
            changes["address"] = [village.address, address]
            village.address = address
    for name, value, check in (
        ("phone", phone, clean_phone),
        ("email", email, clean_email),
        ("website", website, clean_website),
    ):
        if value is None:
            continue
        value = check(value)
        if value != getattr(village, name):
            changes[name] = [getattr(village, name), value]
            setattr(village, name, value)
    if changes:
        session.flush()
        audit_admin(session, by, "village.update", {"village_code": code, "changes": changes})
    head_changes: dict[str, list] = {}
    if head_name is not None or head_nip is not None:
        head = active_head(session, code)
        if head is not None:
            head_changes = update_user(session, by, head, full_name=head_name, nip=head_nip)
    return {"village": changes, "head": head_changes}


_PHONE = re.compile(r"[0-9 ()+\-.]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(\.{_LABEL})+")


def clean_phone(text: str) -> str:
    """A letterhead phone number as printed: "(0271) 593123", "+62 271 593123"; digits with
    spaces, brackets, dashes, dots and a leading +; 6 to 15 digits. Empty: none."""
    text = " ".join(text.split())
    if not text:
        return ""
    digits = sum(c.isdigit() for c in text)
    if len(text) > 40 or not _PHONE.fullmatch(text) or "+" in text[1:] or not 6 <= digits <= 15:
        raise InvalidInput(
            f"Nomor telepon tidak valid: {text!r}.",
            {"phone": "Angka 6-15 digit, boleh dengan spasi, tanda kurung, - atau + di depan."},
        )
    return text


def clean_email(text: str) -> str:
    """A letterhead email address (one address, a domain with a dot). Empty: none."""
    text = text.strip()
    if not text:
        return ""
    if len(text) > 120 or not _EMAIL.fullmatch(text):
        raise InvalidInput(
            f"Alamat pos-el tidak valid: {text!r}.",
            {"email": "Contoh: desa.grogol@sukoharjokab.go.id"},
        )
    return text


def clean_website(text: str) -> str:
    """A letterhead website: an http(s) address of a host name, or a bare host name
    ("https://" added); scheme and host lowercased. No user, port or query. Empty: none."""
    text = text.strip()
    if not text:
        return ""
    url = text if "://" in text else f"https://{text}"
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if (
        len(url) > 200
        or scheme.lower() not in ("http", "https")
        or not _HOST.fullmatch(host)
        or any(c in path for c in "?#@ \"'<>")
        or any(ord(c) < 33 or ord(c) > 126 for c in path)
    ):
        raise InvalidInput(
            f"Alamat situs web tidak valid: {text!r}.",
            {"website": "Contoh: https://grogol.sukoharjokab.go.id"},
        )
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"
