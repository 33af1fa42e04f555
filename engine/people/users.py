"""Users, roles, API tokens and passwords. Tokens are random (256 bits) and stored as SHA-256:
a stolen database does not yield usable tokens. Passwords use argon2id.

Every change to an account (create, edit, disable) is written here together with its audit
event, in the caller's transaction, naming the person who did it (`by`)."""

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
from engine.errors import HeadSignerExists, InvalidInput, NotFound
from engine.people import sessions
from engine.storage import audit
from engine.storage.models import ApiToken, User, Village
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
    elif village_code is None or session.get(Village, village_code) is None:
        raise InvalidInput(f"Kode desa/kelurahan tidak dikenal: {village_code!r}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"Nama pengguna sudah dipakai: {username!r}")
    if role == "head" and village_code is not None:
        current = active_head(session, village_code)
        if current is not None:
            raise HeadSignerExists(
                f"{_village_label(session, village_code)} sudah punya kepala desa/lurah aktif "
                f"({current.full_name}, {current.username}). Nonaktifkan akun itu atau cabut "
                "sertifikatnya dulu; satu desa/kelurahan hanya punya satu kepala penanda "
                "tangan (ditambah Plt./Plh./Pj. yang dicatat)."
            )
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
