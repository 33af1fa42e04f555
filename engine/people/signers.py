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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, HeadSignerExists, InvalidInput, NotFound
from engine.people.users import SYSTEM_ROLE, Actor, audit_admin
from engine.storage.models import RevokedCertificate, SignerCertificate, User, Village
from engine.timeutil import now_utc

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.trust.pki import CertStatus, OcspAnswer, PublishedCrl

STORAGES = ("pkcs12", "hsm")

# Why a certificate is revoked: the choices people are offered (Bahasa Indonesia), each with
# the RFC 5280 reason code it puts in the CRL and the OCSP answer. "berhenti-menjabat" is
# cessationOfOperation: the holder left office; letters signed before stay valid.
RF = x509.ReasonFlags
REVOCATION_REASONS: dict[str, tuple[str, x509.ReasonFlags]] = {
    "kunci-bocor": ("Kunci bocor, hilang atau diketahui orang lain", RF.key_compromise),
    "diganti": ("Diganti dengan sertifikat baru", RF.superseded),
    "berhenti-menjabat": ("Berhenti menjabat (masa jabatan habis, pensiun, mutasi)",
                          RF.cessation_of_operation),
    "data-berubah": ("Nama, jabatan atau desa di sertifikat berubah", RF.affiliation_changed),
    "lainnya": ("Alasan lain", RF.unspecified),
}  # fmt: skip
DEFAULT_REASON = "lainnya"


def require_certificate_admin(by: Actor) -> None:
    """Signer certificates are issued, renewed and revoked by the regency admin (or the
    command line on the server, as a system actor), never by a village account."""
    if by.role not in ("admin", SYSTEM_ROLE):
        raise Forbidden("Hanya admin kabupaten yang menerbitkan, memperbarui atau mencabut "
                        "sertifikat penandatangan.")  # fmt: skip


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
                    f"{village.kind_label.title()} {village.name} sudah punya "
                    f"{village.head_title} aktif yang memegang kunci tanda tangan "
                    f"({other.full_name}, {other.username}). Nonaktifkan akun itu atau cabut "
                    "sertifikatnya dulu; kunci kepala kedua tidak diterbitkan."
                )
    return village


def record_issued(
    session: Session, by: Actor, user: User, cert: x509.Certificate, storage: str
) -> SignerCertificate:
    """Append the new certificate to the public registry and audit the issue. Called in the
    transaction that stores the key on the account."""
    require_certificate_admin(by)
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


def revoke_live_key(
    session: Session, by: Actor, user: User, reason: str, *, code: str = DEFAULT_REASON
) -> str:
    """Revoke the certificate the account signs with now; an account without a live key is an
    error (the admin pages' "Cabut sertifikat")."""
    if not has_live_key(session, user):
        raise InvalidInput(f"{user.username} tidak memegang kunci tanda tangan yang berlaku.")
    serial = revoke_key(session, by, user, reason, code=code)
    assert serial is not None  # has_live_key implies a certificate
    return serial


def revoke_key(
    session: Session, by: Actor, user: User, reason: str, *, code: str = DEFAULT_REASON
) -> str | None:
    """Revoke the account's current signer certificate (into the CRL) and drop its key from
    the account. Returns the revoked serial, or None when the account holds no certificate.
    Letters signed (and timestamped) before now stay valid."""
    serial = user.signer_serial
    if serial is None:
        return None
    if session.get(RevokedCertificate, serial) is None:
        revoke_serial(session, by, serial, reason, code=code)
    _drop_key(session, user)
    return serial


def _drop_key(session: Session, user: User) -> None:
    user.signer_p12 = None
    user.signer_hsm_label = None
    session.flush()


def revoke_serial(
    session: Session, by: Actor, serial: str, reason: str, *, code: str = DEFAULT_REASON
) -> RevokedCertificate:
    """Revoke any signer certificate this deployment issued, by its hex serial, for one of
    REVOCATION_REASONS (``code``) and a free-text note (required for "lainnya"). When it is
    the holder's current certificate, the key is dropped from the account too: nothing can
    be signed with a revoked certificate."""
    require_certificate_admin(by)
    serial = serial.strip().lower()
    reason = (reason or "").strip()
    if code not in REVOCATION_REASONS:
        choices = ", ".join(REVOCATION_REASONS)
        raise InvalidInput(f"Alasan pencabutan tidak dikenal: {code!r} (pilihan: {choices}).")
    label, flag = REVOCATION_REASONS[code]
    if not reason and code == DEFAULT_REASON:
        raise InvalidInput("Alasan wajib diisi.", {"reason": "Alasan wajib diisi."})
    issued = session.get(SignerCertificate, serial)
    if issued is None:
        raise NotFound(f"Sertifikat penandatangan {serial} tidak ada di daftar.")
    if session.get(RevokedCertificate, serial) is not None:
        raise Conflict(f"Sertifikat {serial} sudah dicabut.")
    row = RevokedCertificate(
        serial=serial, revoked_at=now_utc(), reason=_stored_reason(code, reason or label)
    )
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
            "reason_code": code,
            "crl_reason": flag.name,
        },
        reason=reason or label,
    )
    holder = session.get(User, issued.user_id)
    if holder is not None and holder.signer_serial == serial:
        _drop_key(session, holder)
    return row


def _stored_reason(code: str, note: str) -> str:
    """The revocation row keeps the code in front of the note ("kunci-bocor: Laptop hilang"),
    so no column is needed for it; rows made before codes existed read as "lainnya"."""
    return note if code == DEFAULT_REASON else f"{code}: {note}"


def reason_of(stored: str | None) -> tuple[str, str]:
    """(code, note) of a revocation row's reason."""
    stored = stored or ""
    code, sep, note = stored.partition(": ")
    if sep and code in REVOCATION_REASONS:
        return code, note
    return DEFAULT_REASON, stored


def crl_reason(stored: str | None) -> x509.ReasonFlags:
    return REVOCATION_REASONS[reason_of(stored)[0]][1]


def renew(
    session: Session,
    settings: Settings,
    user: User,
    secret: str,
    *,
    by: Actor,
    revoke_old: bool = False,
    note: str = "",
    hsm: bool | None = None,
) -> tuple[str, str]:
    """A new certificate (and key) for a signer who holds one: the same person, title and
    village, as enroll_signer / enroll_hsm issue it (``secret``: the new passphrase, or the
    token PIN for a key on the HSM; ``hsm`` None: where the current key is). The old
    certificate is left to expire (its key is dropped from the account: registry status
    "diganti") or, with ``revoke_old``, revoked as superseded. Letters signed with the old
    one stay valid either way. Returns (old serial, new serial)."""
    from engine.bootstrap import enroll_hsm, enroll_signer  # bootstrap imports this module

    require_certificate_admin(by)
    old = user.signer_serial
    if old is None or session.get(SignerCertificate, old) is None:
        raise InvalidInput(
            f"{user.username} belum memiliki sertifikat penandatangan untuk diperbarui; "
            "terbitkan sertifikat baru (keys issue-signer)."
        )
    already_revoked = session.get(RevokedCertificate, old) is not None
    if hsm is None:
        hsm = user.signer_hsm_label is not None
    if hsm:
        enroll_hsm(session, settings, user, secret, by=by, renewal=True)
    else:
        enroll_signer(session, settings.keys_dir, user, secret, by=by)
    new = user.signer_serial
    if revoke_old and not already_revoked:
        revoke_serial(session, by, old, note, code="diganti")
    audit_admin(
        session,
        by,
        "signer.renew",
        {
            "user_id": user.id,
            "username": user.username,
            "old_serial": old,
            "new_serial": new,
            "old_certificate": "revoked" if revoke_old or already_revoked else "left_to_expire",
        },
        reason=note.strip() or None,
    )
    return old, new


def no_key_message(session: Session, user: User) -> str:
    """Why an account cannot sign, in words for the signer: its certificate was revoked (when
    and why), or it never had one."""
    if user.signer_serial is not None:
        row = session.get(RevokedCertificate, user.signer_serial)
        if row is not None:
            from engine.dates import format_wib

            label = REVOCATION_REASONS[reason_of(row.reason)[0]][0]
            return (
                f"Sertifikat penandatangan Anda dicabut pada {format_wib(row.revoked_at)} "
                f"({label}); tidak ada surat yang ditandatangani. Minta admin kabupaten "
                "menerbitkan sertifikat baru."
            )
    return "Anda belum memiliki sertifikat penandatangan."


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


# --------------------------------------------------------------------------- CRL and OCSP
# What the portal publishes under /pki/ (engine.trust.pki.crl and .ocsp sign it): read with a
# Session or a plain Connection (the portal's autocommit reader).


def _service_serials(keys_dir: Path) -> set[int]:
    """Certificates the issuing CA made for the server itself (the TSA): good while not
    revoked, though not in the signer registry."""
    from engine.trust import pki

    try:
        return {pki.load_tsa_cert(keys_dir).serial_number}
    except pki.PkiError:
        return set()


def certificate_status(conn: Session | Connection, keys_dir: Path, serial: int) -> CertStatus:
    """A serial as the OCSP responder reports it: issued (by the registry or the server
    folder), and revoked when, and why."""
    from engine.trust.pki import CertStatus

    hex_serial = format(serial, "x")
    revoked = conn.execute(
        select(RevokedCertificate.revoked_at, RevokedCertificate.reason).where(
            RevokedCertificate.serial == hex_serial
        )
    ).first()
    issued = serial in _service_serials(keys_dir) or (
        conn.execute(
            select(SignerCertificate.serial).where(SignerCertificate.serial == hex_serial)
        ).first()
        is not None
    )
    if not issued:
        return CertStatus(issued=False)
    if revoked is None:
        return CertStatus(issued=True)
    return CertStatus(True, _utc(revoked.revoked_at), crl_reason(revoked.reason))


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def current_crl(conn: Session | Connection, keys_dir: Path) -> PublishedCrl:
    """The issuing CA's CRL with every revoked certificate, its time and reason code."""
    from engine.trust.pki import published_crl

    rows = conn.execute(
        select(RevokedCertificate.serial, RevokedCertificate.revoked_at, RevokedCertificate.reason)
    ).all()
    entries = [(int(r.serial, 16), _utc(r.revoked_at), crl_reason(r.reason)) for r in rows]
    return published_crl(keys_dir, entries)


def ocsp_answer(conn: Session | Connection, keys_dir: Path, request_der: bytes) -> OcspAnswer:
    """The signed OCSP response (RFC 6960) to a DER request about one of our certificates."""
    from engine.trust.pki.ocsp import answer

    return answer(keys_dir, request_der, lambda serial: certificate_status(conn, keys_dir, serial))
