"""Users, roles, API tokens and passwords. Tokens are random (256 bits) and stored as SHA-256:
a stolen database does not yield usable tokens. Passwords use argon2id.

Every change to an account (create, edit, disable, re-enable, password reset) is written
here together with its audit event, in the caller's transaction, naming the person who did
it (`by`)."""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import default_password_hash_threads
from engine.dates import today_wib
from engine.errors import Forbidden, HeadSignerExists, InvalidInput, NotFound
from engine.people import sessions
from engine.storage import audit
from engine.storage.models import ActingAssignment, ApiToken, User, Village
from engine.timeutil import now_utc

MIN_PASSWORD = 8  # sign-in passwords and signing passphrases alike

STAFF_ROLES = ("operator", "kasi", "sekdes", "head")
ALL_ROLES = (*STAFF_ROLES, "admin")
_hasher = PasswordHasher()
# argon2 is CPU-bound by design (~0.1-0.2 s of one core each). At most this many hashes run at
# once in a process, whatever thread asks: a burst of sign-ins queues here instead of taking
# every core from the other pages. Faces call the hashing functions from a worker thread
# (staff_app.session.password_work), never on the event loop.
_hash_slots = threading.BoundedSemaphore(default_password_hash_threads())


def set_password_hash_threads(threads: int) -> None:
    """How many argon2 hashes this process runs at once (Settings.password_hash_threads); set
    once when the process builds its services, before any sign-in."""
    global _hash_slots
    _hash_slots = threading.BoundedSemaphore(max(1, threads))


@dataclass(frozen=True)
class Actor:
    """Who is acting: enough to check role and village without another query."""

    user_id: int | None  # None only for a system actor (see `system`)
    username: str
    full_name: str
    role: str
    village_code: str | None  # None only for the regency admin and system actors

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.username, user.full_name, user.role, user.village_code)

    @classmethod
    def system(cls, name: str) -> Actor:
        """An actor that is not an account: "cli:<os user>" for the command line without
        --by, "system:demo" for the demo seed. Recorded as such in the audit log."""
        return cls(None, name[:60], name[:120], SYSTEM_ROLE, None)


SYSTEM_ROLE = "system"


def audit_admin(
    session: Session,
    by: Actor,
    action: str,
    detail: dict,
    *,
    reason: str | None = None,
    request_id: int | None = None,
) -> None:
    """The audit event of an administrative write, appended in the same transaction."""
    audit.append(
        session,
        actor_id=by.user_id,
        actor=by.username,
        role=by.role,
        action=action,
        request_id=request_id,
        reason=reason,
        detail=detail,
    )


def active_head(
    session: Session, village_code: str, *, other_than: int | None = None
) -> User | None:
    """The village's active head account, if any (at most one exists: see create_user)."""
    query = select(User).where(
        User.village_code == village_code, User.role == "head", User.active.is_(True)
    )
    if other_than is not None:
        query = query.where(User.id != other_than)
    return session.scalars(query.order_by(User.id).limit(1)).first()


def create_user(
    session: Session,
    *,
    by: Actor,
    username: str,
    full_name: str,
    role: str,
    village_code: str | None,
    nip: str | None = None,
    password: str | None = None,
) -> User:
    """Create an account. A village has at most one active head: a second one is refused
    until the first is disabled (`disable_user`)."""
    username = username.strip()
    full_name = full_name.strip()
    nip = _clean_nip(nip)
    if not username:
        raise InvalidInput("Nama pengguna wajib diisi.", {"username": "Wajib diisi."})
    if password is not None and len(password) < MIN_PASSWORD:
        message = f"Minimal {MIN_PASSWORD} karakter."
        raise InvalidInput(f"Kata sandi terlalu pendek: {message.lower()}", {"password": message})
    if role not in ALL_ROLES:
        raise InvalidInput(f"Peran tidak dikenal: {role!r} (pilihan: {', '.join(ALL_ROLES)})")
    if role == "admin":
        village_code = None
    elif not village_code:
        message = "Pilih desa/kelurahan: wajib untuk semua peran kecuali admin kabupaten."
        raise InvalidInput(message, {"village": "Wajib diisi."})
    elif session.get(Village, village_code) is None:
        raise InvalidInput(
            f"Kode desa/kelurahan tidak dikenal: {village_code!r}",
            {"village": "Pilih desa/kelurahan dari daftar."},
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"Nama pengguna sudah dipakai: {username!r}")
    if role == "head" and village_code is not None:
        _refuse_second_head(session, village_code)
    user = User(
        username=username,
        full_name=full_name or username,
        role=role,
        village_code=village_code,
        nip=nip,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    audit_admin(
        session,
        by,
        "user.create",
        {
            "user_id": user.id,
            "username": user.username,
            "full_name": user.full_name,
            "role": user.role,
            "village_code": user.village_code,
            "nip": user.nip,
            "password_set": bool(password),
        },
    )
    return user


def update_user(
    session: Session,
    by: Actor,
    user: User,
    *,
    full_name: str | None = None,
    nip: str | None = None,
) -> dict[str, list]:
    """Edit an account's name and/or NIP (None: leave as is; "" clears the NIP). Returns the
    changes as {field: [old, new]}; nothing changed means no write and no event."""
    changes: dict[str, list] = {}
    if full_name is not None:
        full_name = full_name.strip()[:120]
        if not full_name:
            raise InvalidInput("Nama wajib diisi.", {"full_name": "Wajib diisi."})
        if full_name != user.full_name:
            changes["full_name"] = [user.full_name, full_name]
            user.full_name = full_name
    if nip is not None:
        new_nip = _clean_nip(nip)
        if new_nip != user.nip:
            changes["nip"] = [user.nip, new_nip]
            user.nip = new_nip
    if changes:
        session.flush()
        audit_admin(
            session,
            by,
            "user.update",
            {
                "user_id": user.id,
                "username": user.username,
                "role": user.role,
                "village_code": user.village_code,
                "changes": changes,
            },
        )
    return changes


def disable_user(session: Session, by: Actor, user: User, reason: str) -> User:
    """Disable an account: it can no longer sign in or use its API tokens (revoked here), and
    a signer certificate it holds is revoked (engine.people.signers) so its key signs nothing valid
    from now on; letters it signed before stay valid. This is how a head is replaced."""
    from engine.people.signers import revoke_key  # signers imports this module

    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Alasan wajib diisi.", {"reason": "Alasan wajib diisi."})
    if by.user_id is not None and by.user_id == user.id:
        raise InvalidInput("Akun sendiri tidak dapat dinonaktifkan.")
    if not user.active:
        raise InvalidInput(f"Akun {user.username} sudah nonaktif.")
    user.active = False
    tokens = revoke_tokens(session, user.id)
    ended = sessions.end_all(session, user.id, "disabled")
    session.flush()
    audit_admin(
        session,
        by,
        "user.disable",
        {
            "user_id": user.id,
            "username": user.username,
            "role": user.role,
            "village_code": user.village_code,
            "tokens_revoked": tokens,
            "sessions_ended": ended,
        },
        reason=reason,
    )
    revoke_key(session, by, user, f"Akun dinonaktifkan: {reason}")
    return user


def _refuse_second_head(session: Session, village_code: str, *, other_than: int | None = None):
    """A village has at most one active head account; the message names the village's own
    title (Kepala Desa or Lurah)."""
    current = active_head(session, village_code, other_than=other_than)
    if current is None:
        return
    village = session.get(Village, village_code)
    title = village.head_title if village else "kepala desa/lurah"
    kind = village.kind if village else "desa/kelurahan"
    raise HeadSignerExists(
        f"{_village_label(session, village_code)} sudah punya {title} aktif "
        f"({current.full_name}, {current.username}). Nonaktifkan akun itu atau cabut "
        f"sertifikatnya dulu; satu {kind} hanya punya satu {title} penanda tangan "
        "(ditambah Plt./Plh./Pj. yang dicatat)."
    )


def enable_user(session: Session, by: Actor, user: User, reason: str) -> User:
    """Re-enable a disabled account: it may sign in again (with the password it had, or one
    set by `reset_password`). Its API tokens and signer certificate stay revoked: a signer
    needs a new certificate. A head is re-enabled only while the village has no other active
    head."""
    _require_admin(by)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Alasan wajib diisi.", {"reason": "Alasan wajib diisi."})
    if user.active:
        raise InvalidInput(f"Akun {user.username} sudah aktif.")
    if user.role == "head" and user.village_code is not None:
        _refuse_second_head(session, user.village_code, other_than=user.id)
    user.active = True
    session.flush()
    audit_admin(
        session,
        by,
        "user.enable",
        {
            "user_id": user.id,
            "username": user.username,
            "role": user.role,
            "village_code": user.village_code,
        },
        reason=reason,
    )
    return user


TEMPORARY_PASSWORD_LENGTH = 12
# No look-alike characters (0/O, 1/l/I): a temporary password is read aloud or copied by hand.
_TEMPORARY_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def temporary_password() -> str:
    """A random temporary password (12 characters, ~70 bits), shown once to the admin."""
    return "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(TEMPORARY_PASSWORD_LENGTH))


def reset_password_check(by: Actor, user: User, new_password: str | None) -> str:
    """The password a reset will set (the admin's, or a generated one), after the rules: not
    one's own account (that is the Password page, with the current password), at least
    MIN_PASSWORD characters. Cheap: call it before hashing."""
    _require_admin(by)
    if by.user_id is not None and by.user_id == user.id:
        raise InvalidInput("Kata sandi sendiri diganti lewat menu Kata sandi, bukan di sini.")
    password = (new_password or "").strip() or temporary_password()
    if len(password) < MIN_PASSWORD:
        message = f"Minimal {MIN_PASSWORD} karakter."
        raise InvalidInput(
            f"Kata sandi sementara terlalu pendek: {message.lower()}", {"password": message}
        )
    return password


def reset_password(
    session: Session, by: Actor, user: User, new_hash: str, *, generated: bool
) -> dict[str, int]:
    """Set an account's password to a temporary one chosen by the admin (`new_hash`, argon2id
    from `hash_password`, computed outside the transaction). Every session of the user ends
    and their API tokens are revoked: whoever held the old password is out. The audit event
    records who reset it and whether it was generated, never the password."""
    _require_admin(by)
    user.password_hash = new_hash
    user.password_changed_at = now_utc()
    tokens = revoke_tokens(session, user.id)
    ended = sessions.end_all(session, user.id, "password_reset")
    session.flush()
    audit_admin(
        session,
        by,
        "user.password_reset",
        {
            "user_id": user.id,
            "username": user.username,
            "role": user.role,
            "village_code": user.village_code,
            "generated": generated,
            "tokens_revoked": tokens,
            "sessions_ended": ended,
        },
    )
    return {"tokens_revoked": tokens, "sessions_ended": ended}


SIGNING_ROLES = ("head", "sekdes")  # the head signs; the sekdes signs "a.n." where allowed


def signing_accounts(session: Session, users: list[User]) -> set[int]:
    """Which of these accounts sign letters and so are offered a signer certificate: active
    heads and secretaries, and a section head named acting head (Plt./Plh./Pj.) for a period
    that has not ended. Operators, other section heads and the regency admin never sign
    (engine.people.signers.check_enrollable refuses operators and the admin outright)."""
    acting = set(
        session.scalars(
            select(ActingAssignment.user_id).where(ActingAssignment.ends_on >= today_wib())
        )
    )
    return {
        u.id
        for u in users
        if u.active
        and u.village_code is not None
        and (u.role in SIGNING_ROLES or (u.id in acting and u.role != "operator"))
    }


def _require_admin(by: Actor) -> None:
    """Account administration is the regency admin's (or the command line's, as a system
    actor)."""
    if by.role not in ("admin", SYSTEM_ROLE):
        raise Forbidden("Hanya admin kabupaten yang mengelola akun.")


def _clean_nip(nip: str | None) -> str | None:
    nip = (nip or "").strip().replace(" ", "")
    if not nip:
        return None
    if not nip.isdigit() or len(nip) != 18:
        raise InvalidInput("NIP harus 18 angka.", {"nip": "NIP harus 18 angka."})
    return nip


def _village_label(session: Session, code: str) -> str:
    village = session.get(Village, code)
    return f"{village.kind_label.title()} {village.name}" if village else code


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"Pengguna tidak ditemukan: {username!r}")
    return user


def issue_token(session: Session, user: User) -> str:
    token = "sd_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_sha256(token), created_at=now_utc()))
    session.flush()
    return token


def actor_for_token(session: Session, token: str) -> Actor | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _sha256(token), ApiToken.revoked.is_(False))
    )
    if row is None or not row.user.active:
        return None
    return Actor.of(row.user)


def revoke_tokens(session: Session, user_id: int) -> int:
    """Revoke every API token of a user (disable, password change); how many were live."""
    count = 0
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False))
    ):
        token.revoked = True
        count += 1
    session.flush()
    return count


def hash_password(password: str) -> str:
    """argon2id; CPU-heavy: call it off the event loop."""
    with _hash_slots:
        return _hasher.hash(password)


def verify_hash(password_hash: str | None, password: str) -> bool:
    """argon2id check of a stored hash; CPU-heavy: call it off the event loop."""
    if not password_hash:
        return False
    with _hash_slots:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password(user: User, password: str) -> bool:
    return verify_hash(user.password_hash, password)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
