"""SQLAlchemy 2 models: the registry of villages, residents, users, requests, letters and the
append-only audit log. Schema changes go through Alembic (engine/storage/migrations)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class District(Base):
    __tablename__ = "districts"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)  # "33.11.01"
    name: Mapped[str] = mapped_column(String(100))


class Village(Base):
    __tablename__ = "villages"
    code: Mapped[str] = mapped_column(String(13), primary_key=True)  # "33.11.01.2001"
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))  # "desa" | "kelurahan"
    district_code: Mapped[str] = mapped_column(ForeignKey("districts.code"))
    postal_code: Mapped[str] = mapped_column(String(5))
    address: Mapped[str] = mapped_column(String(200), default="")
    # The letterhead's contact lines (migration 0021); empty: not printed.
    phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    email: Mapped[str] = mapped_column(String(120), default="", server_default="")
    website: Mapped[str] = mapped_column(String(200), default="", server_default="")
    district: Mapped[District] = relationship(lazy="joined")

    @property
    def head_title(self) -> str:
        return "Kepala Desa" if self.kind == "desa" else "Lurah"

    @property
    def kind_label(self) -> str:
        return "DESA" if self.kind == "desa" else "KELURAHAN"


class Resident(Base):
    __tablename__ = "residents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nik: Mapped[str] = mapped_column(String(16), unique=True)
    kk: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(120))
    birth_place: Mapped[str] = mapped_column(String(80))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))  # "L" | "P"
    religion: Mapped[str] = mapped_column(String(30))
    marital_status: Mapped[str] = mapped_column(String(30))
    occupation: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200))
    rt: Mapped[str] = mapped_column(String(3))
    rw: Mapped[str] = mapped_column(String(3))
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    alive: Mapped[bool] = mapped_column(Boolean, default=True)
    died_on: Mapped[date | None] = mapped_column(Date)
    # Resident administration (engine.people.resident_admin, migration 0014): citizenship, the
    # relationship in the family (SHDK), the dusun of the family's address, and a recorded move
    # out of the village (date and destination; the record stays for the letters issued).
    citizenship: Mapped[str] = mapped_column(String(3), default="WNI", server_default="WNI")
    family_relation: Mapped[str | None] = mapped_column(String(30))
    dusun: Mapped[str | None] = mapped_column(String(60))
    moved_on: Mapped[date | None] = mapped_column(Date)
    moved_to: Mapped[str | None] = mapped_column(String(200))


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))  # operator|kasi|sekdes|head|admin
    village_code: Mapped[str | None] = mapped_column(ForeignKey("villages.code"))  # None: admin
    nip: Mapped[str | None] = mapped_column(String(18))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signer's PKCS#12, encrypted with a passphrase that is never stored.
    signer_p12: Mapped[bytes | None] = mapped_column(LargeBinary)
    signer_cert_pem: Mapped[str | None] = mapped_column(Text)
    signer_not_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signer_serial: Mapped[str | None] = mapped_column(String(40))  # hex, for the CRL
    # The old sign-in lock-out; no longer read or written since 0009 (sign-in is throttled by
    # engine.people.auth with counters in rate_limit_counters).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the signer's key is on the PKCS#11 token (engine.trust.hsm) under this key label.
    signer_hsm_label: Mapped[str | None] = mapped_column(String(60))
    # Where notices about new work reach the user besides the staff app (engine.notify,
    # migration 0013): an e-mail address (SMTP) and a phone number (the messaging webhook).
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    village: Mapped[Village | None] = relationship(lazy="joined")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship(lazy="joined")


class LetterRequest(Base):
    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"))
    workflow_id: Mapped[str] = mapped_column(String(80))
    workflow_version: Mapped[int] = mapped_column(Integer)
    workflow_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(40))
    subjects: Mapped[dict] = mapped_column(JSON)  # subject role -> NIK
    data: Mapped[dict] = mapped_column(JSON)  # field name -> value as typed by the user (JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    # None for a request a resident started online (channel "warga", migration 0012).
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaces_letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letters.id", use_alter=True, name="fk_requests_replaces_letter")
    )
    # "loket" (started by staff at the counter) or "warga" (started by a resident online).
    channel: Mapped[str] = mapped_column(String(10), default="loket", server_default="loket")
    citizen_contact: Mapped[str | None] = mapped_column(String(254))  # e-mail or phone, warga only
    letter: Mapped[Letter | None] = relationship(
        back_populates="request", uselist=False, foreign_keys="Letter.request_id"
    )

    __table_args__ = (Index("ix_requests_village_state", "village_code", "state", "updated_at"),)


class NumberSequence(Base):
    """Last sequence number used per village x register x year (migration 0022). A register is
    a classification code (numbering mode "per_classification") or "*", the village's one
    agenda of outgoing letters (mode "per_village"); see engine.letters.numbering. Its row
    lock serializes numbering, and because it is updated in the issuing transaction a rollback
    returns the number: no gaps, no duplicates."""

    __tablename__ = "number_registers"
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), primary_key=True)
    register: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Letter(Base):
    __tablename__ = "letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"))
    workflow_id: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(120))
    classification: Mapped[str] = mapped_column(String(20))
    # The register its seq came from: its classification, or "*" (engine.letters.numbering).
    register: Mapped[str | None] = mapped_column(String(20))  # NULL: before migration 0022
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(80), unique=True)
    verify_code: Mapped[str] = mapped_column(String(40), unique=True)  # public, unguessable
    subject_name: Mapped[str] = mapped_column(String(120))
    subject_nik: Mapped[str] = mapped_column(String(16))
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signer_name: Mapped[str] = mapped_column(String(120))
    signer_capacity: Mapped[str] = mapped_column(String(200))  # title lines as printed
    signer_serial: Mapped[str | None] = mapped_column(String(40))  # its certificate, hex
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|revoked|replaced
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_letters_revoked_by")
    )
    # A corrected letter points to the one it replaces; the old one's status becomes "replaced".
    replaces_letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letters.id", name="fk_letters_replaces")
    )
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handed_over_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_letters_handed_over_by")
    )
    # Who received the letter at the counter, and the ID they showed (engine.letters.pickup).
    handed_over_to_name: Mapped[str | None] = mapped_column(String(120))
    handed_over_relation: Mapped[str | None] = mapped_column(String(40))
    handed_over_id_number: Mapped[str | None] = mapped_column(String(40))
    # What the public page and the QR seal show: [{"label", "value"}], computed at issue from
    # the letter as printed (engine.letters.facts). NULL for letters issued before it existed.
    public_facts: Mapped[list | None] = mapped_column(JSON)
    request: Mapped[LetterRequest] = relationship(
        back_populates="letter", foreign_keys=[request_id]
    )
    village: Mapped[Village] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("village_code", "classification", "year", "seq", name="uq_letter_seq"),
        # One seq once per register (migration 0022); the highest seq of a village's year.
        Index("uq_letter_register_seq", "village_code", "register", "year", "seq", unique=True),
        Index("ix_letters_village_year_seq", "village_code", "year", "seq"),
    )


class AuditEvent(Base):
    """Append-only (database triggers refuse UPDATE and DELETE) and hash-chained: each event's
    hash covers its content and the previous event's hash, so any edit breaks the chain."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row holding the hash of the newest audit event; locking it orders appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)


class WorkflowSnapshot(Base):
    """The exact YAML and template a request was started with, so a request keeps following the
    workflow version it pinned even after the file on disk changes."""

    __tablename__ = "workflow_snapshots"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    yaml_text: Mapped[str] = mapped_column(Text)
    template_name: Mapped[str] = mapped_column(String(200))  # as written in the YAML
    templates: Mapped[dict] = mapped_column(JSON)  # file name -> text, partials included
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegencySetting(Base):
    """One regency-wide setting (engine.regency_settings): JSON ``value`` or an uploaded
    file in ``blob``."""

    __tablename__ = "regency_settings"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict | list | str | None] = mapped_column(JSON)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_regency_settings_updated_by")
    )


class ActingAssignment(Base):
    """An acting head for a date range (both ends inclusive, WIB dates): during it the acting
    person signs with their own key and the letter reads "Plt. KEPALA DESA ..."."""

    __tablename__ = "acting_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    prefix: Mapped[str] = mapped_column(String(5))  # "Plt." | "Plh." | "Pj."
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


class Attachment(Base):
    """A supporting document uploaded with a request (scan of a KK, a hospital note...)."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # None for a file a resident uploaded with an online request (migration 0012).
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RevokedCertificate(Base):
    """Signer certificates withdrawn by the regency; published in the CRL."""

    __tablename__ = "revoked_certificates"
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # hex
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)


class SignBatch(Base):
    """One passphrase entry signing one or more letters. Progress lives here (not in a process)
    so any app process can show it."""

    __tablename__ = "sign_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Lease of the run (engine.jobs.batch_runs, 0023): unfinished and run out = interrupted.
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignBatchItem(Base):
    __tablename__ = "sign_batch_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("sign_batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|done|failed
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))
    message: Mapped[str | None] = mapped_column(Text)


# Archive and queue indexes (staff web app, migration 0003). The archive pages by keyset on
# (issued_at, id), never OFFSET; names are matched by trigram on PostgreSQL.
Index("ix_letters_village_issued", Letter.village_code, Letter.issued_at, Letter.id)
Index("ix_letters_issued", Letter.issued_at, Letter.id)
Index(
    "ix_letters_village_workflow_issued", Letter.village_code, Letter.workflow_id, Letter.issued_at
)
Index("ix_letters_subject_nik", Letter.subject_nik)
Index(
    "ix_letters_subject_name_trgm",
    Letter.subject_name,
    postgresql_using="gin",
    postgresql_ops={"subject_name": "gin_trgm_ops"},
)
Index("ix_requests_created_by", LetterRequest.created_by_id, LetterRequest.updated_at)


class RateLimitCounter(Base):
    """Requests per client address and fixed time window, shared by every app process."""

    __tablename__ = "rate_limit_counters"
    bucket: Mapped[str] = mapped_column(String(20), primary_key=True)  # "v" | "verify"
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds // width
    count: Mapped[int] = mapped_column(Integer, default=0)


Index("ix_rate_limit_counters_bucket_window", RateLimitCounter.bucket, RateLimitCounter.window)


class StaffSession(Base):
    """One staff sign-in (engine.people.sessions). The cookie carries the random session id;
    only its SHA-256 is stored. Ended at sign-out, by a password change (other sessions of the
    user) and when the account is disabled; a session past expires_at is over as well."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_reason: Mapped[str | None] = mapped_column(String(20))  # signout|password|disabled
    user: Mapped[User] = relationship(lazy="joined")


# The portal looks up "which letter replaced this one" on every /v/ page view.
Index("ix_letters_replaces_letter_id", Letter.replaces_letter_id)


class SignerCertificate(Base):
    """Every signer certificate ever issued, one row per certificate, never updated or deleted
    (database triggers refuse both): the public list at /pki/signers is read from here, so a key
    issued to anyone cannot stay hidden. Revocation is joined from RevokedCertificate."""

    __tablename__ = "signer_certificates"
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)  # hex, as in the CRL
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    full_name: Mapped[str] = mapped_column(String(120))  # as in the certificate
    role: Mapped[str] = mapped_column(String(20))  # the account's role when issued
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    title: Mapped[str] = mapped_column(String(200))  # the certificate's title (capacity)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_storage: Mapped[str] = mapped_column(String(10))  # "pkcs12" | "hsm"
    fingerprint_sha256: Mapped[str] = mapped_column(String(64))  # hex, of the DER certificate
    cert_pem: Mapped[str] = mapped_column(Text)


class SignerLock(Base):
    """Wrong signing passphrases per signer (engine.trust.signer_limit), shared by every app
    process: the count since the last correct one, when the next try may come, and the lock that
    only the regency admin lifts."""

    __tablename__ = "signer_locks"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --------------------------------------------------------------------------- citizen requests
# (issue 10, migration 0012: engine.citizens)


class CitizenTracking(Base):
    """A request a resident started online: the SHA-256 of its tracking code (the code is shown
    to the resident once and never stored) and the NIK of who asked."""

    __tablename__ = "citizen_tracking"
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    nik: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CitizenPin(Base):
    """The argon2 hash of the PIN the office handed a resident for their history page."""

    __tablename__ = "citizen_pins"
    nik: Mapped[str] = mapped_column(ForeignKey("residents.nik"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


# --------------------------------------------------------------------------- notices (0013)
class Notice(Base):
    """The notification outbox (engine.notify): one row per recipient and transport, written in
    the transaction of the audit event it follows (a rollback leaves none). "inapp" rows are the
    staff app's notices (delivered when written; read_at marks them read); "email" and "webhook"
    rows wait as "pending" until a dispatcher claims ("sending") and delivers them ("sent"), or
    gives up after the configured attempts ("failed")."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The audit event that caused it, by id only (no foreign key into the append-only log).
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    village_code: Mapped[str | None] = mapped_column(String(13))
    kind: Mapped[str] = mapped_column(String(20))  # queue | returned | ready | rejected
    audience: Mapped[str] = mapped_column(String(10))  # staff | warga
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    address: Mapped[str | None] = mapped_column(String(254))  # e-mail or phone; None for inapp
    transport: Mapped[str] = mapped_column(String(10))  # inapp | email | webhook
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(200))  # path under the public URL
    status: Mapped[str] = mapped_column(String(10))  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_notices_due", "status", "next_attempt_at"),
        Index("ix_notices_user_unread", "user_id", "transport", "read_at"),
    )


class NoticeAttempt(Base):
    """Every delivery attempt of a notice: when, by which transport and worker, and how it
    ended (sent, or error with the error's text)."""

    __tablename__ = "notice_attempts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    notice_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("notices.id"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    transport: Mapped[str] = mapped_column(String(10))
    worker: Mapped[str] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(10))  # sent | error
    error: Mapped[str | None] = mapped_column(Text)


# --- Open statistics (engine.letters.statistics, migration 0016) -----------------------------
# Covering indexes for the yearly aggregate: letters by issue time with every column the public
# statistics read, and requests by id with their channel and creation time, so both sides of the
# join are read from the indexes alone (PostgreSQL index-only scans; SQLite covering indexes).
Index(
    "ix_letters_statistics",
    Letter.issued_at,
    Letter.village_code,
    Letter.workflow_id,
    Letter.request_id,
    Letter.handed_over_at,
)
Index("ix_requests_statistics", LetterRequest.id, LetterRequest.channel, LetterRequest.created_at)


# --------------------------------------------------------------------------- archive number search
# (issue 9, migration 0017: engine.letters.archive) Any part of a letter's number ("045",
# "/II/2026") is an ILIKE '%...%'; on PostgreSQL a trigram index serves it.
Index(
    "ix_letters_number_trgm",
    Letter.number,
    postgresql_using="gin",
    postgresql_ops={"number": "gin_trgm_ops"},
)


# --- Open statistics rollup (engine.letters.statistics_rollup, migration 0018) ---------------
# Letters issued before `StatRefresh.settled_before` (and hand-overs recorded before it) are
# counted here; /statistik adds the few later ones on demand. Written only by the refresh.
class StatLetters(Base):
    """Letters issued per WIB year x village, broken down by one dimension at a time:
    ("month", "1".."12"), ("type", workflow id) or ("channel", "loket"/"warga"); each
    dimension adds up to the village's letters of the year."""

    __tablename__ = "stat_letters"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    village_code: Mapped[str] = mapped_column(String(13), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    letters: Mapped[int] = mapped_column(BigInteger)


class StatDuration(Base):
    """Histogram of service times ("signature": request -> signed; "handover": signed -> handed
    over) per WIB year of issue x kecamatan, in the fixed buckets of statistics_rollup."""

    __tablename__ = "stat_durations"
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    measure: Mapped[str] = mapped_column(String(10), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    letters: Mapped[int] = mapped_column(BigInteger)


class StatRefresh(Base):
    """The rollup's watermark: everything before ``settled_before`` is in the rollup."""

    __tablename__ = "stat_refresh"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    settled_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


Index("ix_letters_handed_over_at", Letter.handed_over_at)


import engine.storage.workflow_publications  # noqa: E402, F401 - its table, kept apart (size)
