"""Supporting documents uploaded with a request (a scan of the KK, a hospital note...).

Only PDF, JPEG and PNG are kept, recognised by their first bytes (a renamed .exe is refused
whatever its name says); each file is at most ``MAX_SIZE`` bytes and a request holds at most
``MAX_PER_REQUEST``. Staff of the request's village (and the regency admin) may read them;
another village gets "not found", as for the request itself."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.people.users import STAFF_ROLES, Actor
from engine.requests.workflows import TERMINAL_STATES
from engine.storage.models import Attachment, LetterRequest
from engine.timeutil import now_utc

MAX_SIZE = 2 * 1024 * 1024
MAX_PER_REQUEST = 5
FIELD = "attachment"  # the form field and the key of errors
_MAGIC = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
)
_UNSAFE = re.compile(r"[^\w .()+-]+")


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it. ``size`` is its full size when ``data`` was read only up
    to ``MAX_SIZE + 1`` bytes (enough to refuse it)."""

    filename: str
    data: bytes
    size: int | None = None

    @property
    def length(self) -> int:
        return self.size if self.size is not None else len(self.data)


@dataclass(frozen=True)
class AttachmentInfo:
    id: int
    filename: str
    content_type: str
    size: int


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, usual extension) from the file's first bytes, or None if not allowed."""
    for magic, content_type, extension in _MAGIC:
        if data.startswith(magic):
            return content_type, extension
    return None


def size_label(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")
    return f"{max(1, round(size / 1024))} KB"


def clean_filename(name: str, extension: str) -> str:
    """A short, printable base name that ends in the extension the content has."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip(" ._") or "lampiran"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem[: 200 - len(extension)] + extension


def check(uploads: Sequence[Upload], already: int = 0) -> list[tuple[Upload, str, str]]:
    """Each upload with its (content type, clean filename); InvalidInput naming every bad file.
    Empty file inputs (no file chosen) are skipped."""
    chosen = [u for u in uploads if u.filename or u.length]
    problems: list[str] = []
    out: list[tuple[Upload, str, str]] = []
    if already + len(chosen) > MAX_PER_REQUEST:
        problems.append(
            f"Paling banyak {MAX_PER_REQUEST} lampiran per permohonan "
            f"(sudah ada {already}, dipilih {len(chosen)})."
        )
    for upload in chosen:
        name = upload.filename or "berkas"
        if upload.length > MAX_SIZE or len(upload.data) > MAX_SIZE:
            problems.append(
                f"{name}: terlalu besar ({size_label(max(upload.length, len(upload.data)))}); "
                f"maksimal {size_label(MAX_SIZE)} per berkas."
            )
            continue
        found = sniff(upload.data)
        if found is None:
            problems.append(
                f"{name}: isi berkas bukan PDF, JPEG atau PNG "
                "(nama berkas saja tidak cukup; pindai ulang atau simpan sebagai PDF)."
            )
            continue
        out.append((upload, found[0], clean_filename(name, found[1])))
    if problems:
        raise InvalidInput("Lampiran belum bisa disimpan.", {FIELD: " ".join(problems)})
    return out


def _request(session: Session, actor: Actor, request_id: int) -> LetterRequest:
    request = session.get(LetterRequest, request_id)
    if request is None or (actor.role != "admin" and request.village_code != actor.village_code):
        raise NotFound(f"Permohonan #{request_id} tidak ditemukan.")
    return request


def count(session: Session, request_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Attachment).where(Attachment.request_id == request_id)
    )


def add(
    session: Session, actor: Actor, request_id: int, uploads: Sequence[Upload]
) -> list[Attachment]:
    """Store the chosen files with the request, all or none, in the caller's transaction."""
    request = _request(session, actor, request_id)
    if actor.role not in STAFF_ROLES:
        raise InvalidInput("Hanya petugas desa/kelurahan yang menambah lampiran.")
    if request.state in TERMINAL_STATES:
        raise InvalidInput(
            "Permohonan sudah selesai; lampiran tidak bisa ditambah.",
            {FIELD: "Permohonan sudah selesai."},
        )
    checked = check(uploads, count(session, request_id))
    rows = [
        Attachment(
            request_id=request.id,
            filename=filename,
            content_type=content_type,
            size=len(upload.data),
            data=upload.data,
            uploaded_by_id=actor.user_id,
            created_at=now_utc(),
        )
        for upload, content_type, filename in checked
    ]
    session.add_all(rows)
    session.flush()
    return rows


def listing(session: Session, actor: Actor, request_id: int) -> list[AttachmentInfo]:
    """The request's attachments without their bytes."""
    _request(session, actor, request_id)
    rows = session.execute(
        select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size)
        .where(Attachment.request_id == request_id)
        .order_by(Attachment.id)
    )
    return [AttachmentInfo(*r) for r in rows]


def fetch(session: Session, actor: Actor, request_id: int, attachment_id: int) -> Attachment:
    """One attachment with its bytes; NotFound outside the actor's village."""
    _request(session, actor, request_id)
    row = session.get(Attachment, attachment_id)
    if row is None or row.request_id != request_id:
        raise NotFound("Lampiran tidak ditemukan.")
    return row
