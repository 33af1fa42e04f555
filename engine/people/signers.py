"""Signer keys as records: the one-head rule, the registry of every certificate ever issued,
and revocation.

- At most one active head signer per village (plus the acting signer declared in
  acting_assignments, who signs with their own key as "Plt."/"Plh."/"Pj."). A second head is
  refused (HeadSignerExists) until the first is disabled or their certificate revoked.
- Every issued certificate is appended to `signer_certificates` (never updated or deleted)
  and published at /pki/signers, so a key issued to anyone is visible to everyone.
- Issuing and revoking append their audit events in the same transaction.

The key itself is made by engine.trust.pki (PKCS#12) or engine.trust.hsm (token); see
engine.bootstrap enroll_signer / enroll_hsm, which call `check_enrollable` first and `record_issued`
after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, HeadSignerExists, InvalidInput, NotFound
from engine.people.users import Actor, audit_admin
from engine.storage.models import RevokedCertificate, SignerCertificate, User, Village
from engine.timeutil import now_utc

STORAGES = ("pkcs12", "hsm")


def has_live_key(session: Session, user: User) -> bool:
    """The account holds a signing key whose certificate is not revoked."""
    if user.signer_p12 is None and user.signer_hsm_label is None:
        return False
    if user.signer_serial is None:
        return True  # a key without a recorded serial: count it, to be safe
    return session.get(RevokedCertificate, user.signer_serial) is None


def live_key_holders(session: Session, users: list[User]) -> set[int]:
    """Ids of the given accounts that hold a live key (has_live_key, in one query)."""
    holders = [u for u in users if u.signer_p12 is not None or u.signer_hsm_label is not None]
    serials = [u.signer_serial for u in holders if u.signer_serial]
    revoked = (
        set(
            session.scalars(
                select(RevokedCertificate.serial).where(RevokedCertificate.serial.in_(serials))
            )
        )
        if serials
        else set()
    )
    return {u.id for u in holders if u.signer_serial not in revoked}


def check_enrollable(session: Session, user: User) -> Village:
    """Refuse a key for an account that may not hold one; returns the user's village."""
    if user.village_code is None:
        raise InvalidInput("Admin kabupaten tidak menandatangani surat desa.")
    if not user.active:
        raise InvalidInput(f"Akun {user.username} nonaktif: tidak dapat diberi kunci.")
    if user.role == "operator":
        raise InvalidInput("Operator tidak menandatangani surat.")
    village = session.get(Village, user.village_code)
    if user.role == "head":
        for other in session.scalars(
            select(User).where(
                User.village_code == user.village_code,
                User.role == "head",
                User.active.is_(True),
                User.id != user.id,
            )
        ):
            if has_live_key(session, other):
                raise HeadSignerExists(
                    f"{village.kind_label.title()} {village.name} sudah punya kepala desa/lurah "
                    f"aktif yang memegang kunci tanda tangan ({other.full_name}, "
                    f"{other.username}). Nonaktifkan akun itu atau cabut sertifikatnya dulu; "
                    "kunci kepala kedua tidak diterbitkan."
                )
    return village


def record_issued(
    session: Session, by: Actor, user: User, cert: x509.Certificate, storage: str
) -> SignerCertificate:
    """Append the new certificate to the public registry and audit the issue. Called in the
    transaction that stores the key on the account."""
    if storage not in STORAGES:
        raise ValueError(storage)
    serial = format(cert.serial_number, "x")
    title = _attr(cert, x509.NameOID.TITLE)
    row = SignerCertificate(
        serial=serial,
        user_id=user.id,
        full_name=_attr(cert, x509.NameOID.COMMON_NAME) or user.full_name,
        role=user.role,
        village_code=user.village_code,
        title=title,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issued_at=now_utc(),
        key_storage=storage,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )
    session.add(row)
    session.flush()
    audit_admin(
        session,
        by,
        "signer.issue",
        {
            "user_id": user.id,
            "username": user.username,
            "role": user.role,
            "village_code": user.village_code,
            "serial": serial,
            "title": title,
            "key_storage": storage,
            "not_after": row.not_after.isoformat(),
        },
    )
    return row


def revoke_key(session: Session, by: Actor, user: User, reason: str) -> str | None:
    """Revoke the account's current signer certificate (into the CRL) and drop its key from
    the account. Returns the revoked serial, or None when the account holds no certificate.
    Letters signed (and timestamped) before now stay valid."""
    serial = user.signer_serial
    if serial is None:
        return None
    if session.get(RevokedCertificate, serial) is None:
        revoke_serial(session, by, serial, reason)
    user.signer_p12 = None
    user.signer_hsm_label = None
    session.flush()
    return serial


def revoke_serial(session: Session, by: Actor, serial: str, reason: str) -> RevokedCertificate:
    """Revoke any signer certificate this deployment issued, by its hex serial."""
    serial = serial.strip().lower()
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Alasan wajib diisi.", {"reason": "Alasan wajib diisi."})
    issued = session.get(SignerCertificate, serial)
    if issued is None:
        raise NotFound(f"Sertifikat penandatangan {serial} tidak ada di daftar.")
    if session.get(RevokedCertificate, serial) is not None:
        raise Conflict(f"Sertifikat {serial} sudah dicabut.")
    row = RevokedCertificate(serial=serial, revoked_at=now_utc(), reason=reason)
    session.add(row)
    session.flush()
    audit_admin(
        session,
        by,
        "signer.revoke",
        {
            "user_id": issued.user_id,
            "serial": serial,
            "role": issued.role,
            "village_code": issued.village_code,
        },
        reason=reason,
    )
    return row


# --------------------------------------------------------------------------- public registry


@dataclass(frozen=True)
class RegistryEntry:
    """One published certificate: no NIK, no NIP, no username (see registry())."""

    village_code: str
    village: str
    district: str
    role: str
    title: str
    name: str
    serial: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    key_storage: str
    status: str  # "aktif" | "dicabut" | "kedaluwarsa" | "diganti" | "akun nonaktif"
    revoked_at: datetime | None


def registry(session: Session, *, now: datetime | None = None) -> list[RegistryEntry]:
    """Every signer certificate ever issued, by village then issue time.

    Published fields: the village, the role and title, the holder's name as it stands in the
    certificate (it is printed on every letter they sign and embedded in every signed PDF),
    serial, fingerprint and dates. Not published: NIK (never stored here), NIP (printed on a
    Lurah's letters, but not needed to spot a rogue key, so not republished in bulk), the
    login name, who issued it and the free-text revocation reason (the audit log has them)."""
    now = now or now_utc()
    rows = session.execute(
        select(SignerCertificate, RevokedCertificate, User, Village)
        .join(User, User.id == SignerCertificate.user_id)
        .join(Village, Village.code == SignerCertificate.village_code)
        .outerjoin(RevokedCertificate, RevokedCertificate.serial == SignerCertificate.serial)
        .order_by(SignerCertificate.village_code, SignerCertificate.issued_at)
    ).all()
    out = []
    for cert, revoked, user, village in rows:
        if revoked is not None:
            status = "dicabut"
        elif cert.not_after <= now:
            status = "kedaluwarsa"
        elif user.signer_serial != cert.serial:
            status = "diganti"  # the account was re-keyed; this key was dropped
        elif not user.active:
            status = "akun nonaktif"
        else:
            status = "aktif"
        out.append(
            RegistryEntry(
                village_code=cert.village_code,
                village=f"{village.kind_label.title()} {village.name}",
                district=village.district.name,
                role=cert.role,
                title=cert.title,
                name=cert.full_name,
                serial=cert.serial,
                fingerprint_sha256=cert.fingerprint_sha256,
                not_before=cert.not_before,
                not_after=cert.not_after,
                issued_at=cert.issued_at,
                key_storage=cert.key_storage,
                status=status,
                revoked_at=revoked.revoked_at if revoked else None,
            )
        )
    return out


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""
