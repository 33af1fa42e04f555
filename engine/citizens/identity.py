"""Who a resident is, online: NIK + No. KK + date of birth, all three matching the registry.

- One answer (IdentityFailed, errors.NO_MATCH) for an unknown NIK and for a registered NIK with
  a wrong No. KK or date of birth, after the same work: one registry look-up by NIK and one
  HMAC-SHA256 of the registry's triple (a fixed stand-in when the NIK is unknown) compared in
  constant time with the HMAC of what was typed. Faces add a constant floor (IDENTIFY_FLOOR)
  under every answer so what remains of the difference does not show.
- Failures are counted per client address and per NIK (engine.citizens.limits), also for NIKs
  nobody has; past the allowance the key is refused for up to 15 minutes.
- Success gives a pass: an encrypted, authenticated, time-limited token (Fernet, keyed from
  the deployment's secret key) holding the NIK, which any app process can read. The web face
  keeps it in an HttpOnly cookie, the JSON API takes it as a bearer token. A deceased resident
  is identified but cannot ask for letters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.citizens import limits
from engine.citizens.errors import IdentityFailed, NotIdentified
from engine.errors import InvalidInput
from engine.people.nik import NikError, mask_nik, parse_nik
from engine.storage.db import transaction
from engine.storage.models import Resident, Village

PASS_SECONDS = 30 * 60  # a pass lasts half an hour: enough to fill a form on a slow phone
IDENTIFY_FLOOR = 0.4  # seconds: every identification answer comes no sooner than this
_STAND_IN = ("0000000000000000", "1900-01-01")  # the triple compared when a NIK is unknown


@dataclass(frozen=True)
class Identified:
    nik: str
    masked_nik: str
    first_name: str  # a greeting, nothing more
    village_name: str
    alive: bool
    token: str  # the pass


def parse_identity(nik: object, kk: object, birth_date: object) -> tuple[str, str, date]:
    """The typed triple, or InvalidInput naming each malformed part. What is wrong with the form
    of a number says nothing about whether anyone has it."""
    errors: dict[str, str] = {}
    parsed_nik = parsed_kk = ""
    parsed_date = None
    try:
        parsed_nik = parse_nik(nik if isinstance(nik, str) else "").nik
    except NikError as exc:
        errors["nik"] = str(exc)
    kk_text = "".join(kk.split()) if isinstance(kk, str) else ""
    if len(kk_text) == 16 and kk_text.isdigit():
        parsed_kk = kk_text
    else:
        errors["kk"] = "No. KK harus 16 digit angka"
    if isinstance(birth_date, date):
        parsed_date = birth_date
    else:
        try:
            parsed_date = date.fromisoformat(str(birth_date).strip())
        except ValueError:
            errors["birth_date"] = "Tanggal lahir tidak valid (format YYYY-MM-DD)"
    if errors or parsed_date is None:
        raise InvalidInput("Data belum lengkap atau formatnya belum benar.", errors)
    return parsed_nik, parsed_kk, parsed_date


def _mac(secret: str, nik: str, kk: str, born: str) -> bytes:
    message = f"{nik}\x00{kk}\x00{born}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def identify(
    factory: sessionmaker[Session],
    secret: str,
    nik: object,
    kk: object,
    birth_date: object,
    *,
    client: str,
    clock: Callable[[], float] = time.time,
) -> Identified:
    """Check the triple from client address ``client``; Identified with a pass, or
    IdentityFailed (always the same), TooManyAttempts, or InvalidInput for a malformed part."""
    nik_text, kk_text, born = parse_identity(nik, kk, birth_date)
    now = clock()
    keys = {limits.IDENTIFY_ADDRESS: client, limits.IDENTIFY_NIK: limits.digest("nik", nik_text)}
    with transaction(factory) as session:
        limits.refuse_if_over(session.connection(), keys, now)
        # Only the two compared columns: the same one-row read whether or not anyone matches.
        row = session.execute(
            select(Resident.kk, Resident.birth_date).where(Resident.nik == nik_text)
        ).first()
        kk_known, born_known = (row[0], row[1].isoformat()) if row is not None else _STAND_IN
        expected = _mac(secret, nik_text, kk_known, born_known)
        given = _mac(secret, nik_text, kk_text, born.isoformat())
        matched = hmac.compare_digest(expected, given) and row is not None
        if not matched:
            limits.count(session.connection(), keys, now)
        else:
            found = _identified(session, secret, nik_text, now)
    if not matched:
        raise IdentityFailed()
    return found


def _identified(session: Session, secret: str, nik: str, now: float) -> Identified:
    resident, village_name = session.execute(
        select(Resident, Village.name)
        .join(Village, Village.code == Resident.village_code)
        .where(Resident.nik == nik)
    ).one()
    return Identified(
        nik=resident.nik,
        masked_nik=mask_nik(resident.nik),
        first_name=resident.name.split()[0] if resident.name else "",
        village_name=village_name,
        alive=resident.alive,
        token=issue_pass(secret, resident.nik, now),
    )


def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"suratdesa-warga-pass\x00" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def issue_pass(secret: str, nik: str, now: float | None = None) -> str:
    payload = json.dumps({"nik": nik}).encode()
    at = int(now if now is not None else time.time())
    return _fernet(secret).encrypt_at_time(payload, at).decode()


def read_pass(secret: str, token: str | None, now: float | None = None) -> str:
    """The NIK a valid, unexpired pass holds; NotIdentified otherwise."""
    if not token or len(token) > 1000:
        raise NotIdentified()
    at = int(now if now is not None else time.time())
    try:
        payload = _fernet(secret).decrypt_at_time(token.encode(), PASS_SECONDS, at)
        nik = json.loads(payload)["nik"]
    except (InvalidToken, ValueError, KeyError, TypeError):
        raise NotIdentified() from None
    if not isinstance(nik, str):
        raise NotIdentified()
    return nik
