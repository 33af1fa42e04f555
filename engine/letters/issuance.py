"""Signing a request issues its letter: number + render + QR + PAdES sign + store. Nothing is
written until the one short transaction that stores the letter, its number and the request's
move together; any failure before or in it leaves no letter, no number used, the request still
waiting for signature (see Issuer.issue). A wrong passphrase is found before anything starts
and is audited.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.dates import WIB
from engine.errors import Conflict, Forbidden, InvalidInput, SuratDesaError
from engine.letters import number_settings, numbering
from engine.letters.facts import public_facts
from engine.letters.kop import village_info
from engine.letters.make_pool import Blank, Produced, produce
from engine.letters.render import LetterContent, Person, SignerInfo, render_letter
from engine.letters.revocation import mark_replaced
from engine.letters.signer_check import check_not_revoked, serial_of
from engine.people import acting, signers
from engine.people.resident_admin import mark_deceased
from engine.people.residents import SEX_LABELS, full_address
from engine.people.users import Actor
from engine.requests.catalog import WorkflowCatalog
from engine.requests.letter_requests import check_letter_text, load_for_actor, move
from engine.requests.statemachine import ISSUED, transition
from engine.requests.workflows import TERMINAL_STATES, WorkflowSpec, format_number
from engine.storage.db import read_only, transaction
from engine.storage.models import Letter, LetterRequest, Resident, User, Village
from engine.timeutil import now_utc
from engine.trust import lta, signer_limit
from engine.trust.seal import qr_text, seal_for_letter
from engine.trust.signing import (
    LoadedSigner,
    SigningError,
    WrongPassphrase,
    load_signer,
    make_timestamper,
)

SIGN = "sign"


def new_verify_code() -> str:
    """160 random bits, base32 (A-Z2-7): unguessable, and QR alphanumeric-mode friendly."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


OPTIMISTIC_TRIES = 4  # lost races for a number before the letter is made under the lock


class _NumberTaken(Exception):
    """Another letter took the number this one printed: make it again."""


def _check_version(request: LetterRequest, version: int) -> None:
    if request.version != version:
        raise Conflict(
            "Permohonan ini sudah diproses orang lain sejak Anda membukanya. Muat ulang."
        )


@dataclass
class _Draft:
    """A letter about to be issued, as read before any lock is taken."""

    request: LetterRequest
    spec: WorkflowSpec
    target: str
    issued_at: datetime
    content: LetterContent  # number None: set by _make
    signer_user: User
    location: str
    classification: str  # the code it prints (the regency's setting, else the YAML's)
    register: numbering.Register  # the register its seq comes from
    seq: int  # the number it would get when read

    @property
    def village_code(self) -> str:
        return self.request.village_code

    @property
    def year(self) -> int:
        return self.issued_at.astimezone(WIB).year


@dataclass
class _Made:
    """The rendered and signed letter for number ``seq``."""

    seq: int
    code: str
    content: LetterContent
    facts: list
    pdf: bytes
    render: float
    sign: float
    serial: str  # the signing certificate's serial (hex), checked against revocation on store
    # SHA-256 of the certified revision (the letter as issued, the registry's key); ``pdf``
    # continues with the archival update (DSS + document timestamp, engine.trust.lta)
    issued_sha256: str = ""
    maker: int = 0  # the process that rendered and signed it (engine.letters.make_pool)


@dataclass
class Stages:
    """Seconds spent per stage of the last issuance (read by the benchmark)."""

    number: float = 0.0
    render: float = 0.0
    sign: float = 0.0
    store: float = 0.0
    maker: int = 0  # pid of the process that rendered and signed it


@lru_cache(maxsize=4)
def _timestamper(tsa_url: str | None, keys_dir: Path):
    return make_timestamper(tsa_url, keys_dir)


class Issuer:
    """Issues letters for one process; holds the settings, the workflow catalog and the TSA."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        catalog: WorkflowCatalog,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.factory = factory
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.stages = Stages()
        self.stage_log: list[Stages] | None = None  # set to a list to collect every letter's
        # Test hook: called between signing and storing, to prove a crash there loses nothing.
        self.before_store: Callable[[], None] | None = None
        # PAdES B-LTA (the DSS and a document timestamp after the certification). Only
        # bench/sign.py turns it off, to measure B-T beside it in the same run.
        self.archival = True

    def unlock(
        self, actor: Actor, passphrase: str, *, request_id: int | None = None
    ) -> LoadedSigner:
        """Open the actor's signing key: their PKCS#12 with its passphrase, or their key on the
        PKCS#11 token with the token PIN. Each try passes the per-signer limit first
        (``engine.trust.signer_limit``: a locked key or a try that comes too early is refused
        without looking at the passphrase); a wrong passphrase or PIN is counted and audited and
        signs nothing. The caller closes the returned signer (it may hold a token session)."""
        with transaction(self.factory) as session:
            user = session.get(User, actor.user_id)
            if user is None:
                raise Forbidden("Anda belum memiliki sertifikat penandatangan.")
            if not signers.has_live_key(session, user):  # none, or revoked: say which
                raise Forbidden(signers.no_key_message(session, user))
            p12, hsm_label, user_id = user.signer_p12, user.signer_hsm_label, user.id
            signer_limit.claim(session, user_id, self.clock())
        # The passphrase is checked outside any transaction: no row stays locked meanwhile.
        try:
            if hsm_label is not None:
                signer = self._load_hsm(hsm_label, passphrase)
            else:
                signer = load_signer(p12, passphrase, keys_dir=self.settings.keys_dir)
        except WrongPassphrase:
            with transaction(self.factory) as session:
                error = signer_limit.failed(session, actor, self.clock(), request_id=request_id)
            raise error from None
        except BaseException:
            with transaction(self.factory) as session:
                signer_limit.released(session, user_id)
            raise
        try:
            with transaction(self.factory) as session:
                signer_limit.succeeded(session, user_id)
        except BaseException:
            signer.close()
            raise
        return signer

    def _load_hsm(self, key_label: str, pin: str) -> LoadedSigner:
        module, token = self.settings.pkcs11_module, self.settings.pkcs11_token
        if not module or not token:
            raise SigningError(
                "Kunci penandatangan ada di token HSM, tetapi token HSM belum diatur di server."
            )
        from engine.trust.hsm import load_hsm_signer  # python-pkcs11 only where a token is used

        return load_hsm_signer(module, token, key_label, pin, keys_dir=self.settings.keys_dir)

    def sign(self, actor: Actor, request_id: int, *, version: int, passphrase: str) -> Letter:
        with transaction(self.factory) as session:
            request = load_for_actor(session, actor, request_id)
            spec = self.catalog.pinned(session, request)
            day = self.clock().astimezone(WIB).date()
            role = acting.step_capacity(session, actor, day, spec, request.state).role
            transition(spec, request.state, SIGN, role, None)  # fail fast before unlocking
            check_letter_text(spec, request)  # text the letter cannot carry: 422, key untouched
        with self.unlock(actor, passphrase, request_id=request_id) as signer:
            return self.issue(actor, request_id, version=version, signer=signer)

    def sign_many(
        self, actor: Actor, requests: Sequence[tuple[int, int]], *, passphrase: str
    ) -> list[Letter | SuratDesaError]:
        """Batch signing with one passphrase entry: (request_id, version) pairs; one result each."""
        results: list[Letter | SuratDesaError] = []
        with self.unlock(actor, passphrase) as signer:
            for request_id, version in requests:
                try:
                    results.append(self.issue(actor, request_id, version=version, signer=signer))
                except SuratDesaError as exc:
                    results.append(exc)
        return results

    def issue(self, actor: Actor, request_id: int, *, version: int, signer: LoadedSigner) -> Letter:
        """Issue the request's letter. Locks (SQLite's write lock, PostgreSQL's row locks on
        the request and the village's number sequence) are held only for the short write that
        stores it: the number is read first, the letter rendered and signed outside any
        transaction, and stored only if that number is still the next one; otherwise it is
        made again with the new number. After OPTIMISTIC_TRIES lost races the letter is made
        inside the write transaction, as every try used to be, so it always finishes."""
        for _ in range(OPTIMISTIC_TRIES):
            t0 = time.perf_counter()
            draft = self._draft(actor, request_id, version)
            t1 = time.perf_counter()
            made = self._make(draft, draft.seq, signer)
            if self.before_store is not None:
                self.before_store()
            t4 = time.perf_counter()
            try:
                with transaction(self.factory) as session:
                    letter = self._store(session, actor, draft, made, version, allocate=True)
            except _NumberTaken:
                continue
            self._stages(
                Stages(t1 - t0, made.render, made.sign, time.perf_counter() - t4, made.maker)
            )
            return letter
        with transaction(self.factory) as session:  # contended: hold the number meanwhile
            t0 = time.perf_counter()
            draft = self._draft(actor, request_id, version, session=session)
            _check_version(load_for_actor(session, actor, request_id, lock=True), version)
            check_not_revoked(session, actor.user_id, serial_of(signer.cert))
            seq = numbering.allocate(session, draft.register)
            t1 = time.perf_counter()
            made = self._make(draft, seq, signer)
            if self.before_store is not None:
                self.before_store()
            t4 = time.perf_counter()
            letter = self._store(session, actor, draft, made, version, allocate=False)
        self._stages(Stages(t1 - t0, made.render, made.sign, time.perf_counter() - t4, made.maker))
        return letter

    def _stages(self, stages: Stages) -> None:
        self.stages = stages
        if self.stage_log is not None:
            self.stage_log.append(stages)

    def _draft(
        self, actor: Actor, request_id: int, version: int, *, session: Session | None = None
    ) -> _Draft:
        """Everything the letter needs, read in one short transaction (no row locked, nothing
        written): the request as of ``version``, the signer's capacity, the content without
        its number, and the number it would get now."""
        if session is None:
            with read_only(self.factory) as own:
                return self._draft(actor, request_id, version, session=own)
        request = load_for_actor(session, actor, request_id)
        _check_version(request, version)
        spec = self.catalog.pinned(session, request)
        check_letter_text(spec, request)
        issued_at = self.clock()
        local = issued_at.astimezone(WIB)
        # An acting head (Plt./Plh./Pj.), or a sekdes where the step allows "a.n.", signs
        # the head's step with their own key.
        capacity = acting.step_capacity(session, actor, local.date(), spec, request.state)
        target = transition(spec, request.state, SIGN, capacity.role, None)
        if target != ISSUED:
            raise InvalidInput("Alur ini tidak menerbitkan surat pada tanda tangan.")
        village = session.get(Village, request.village_code)
        signer_user = session.get(User, actor.user_id)
        code, register = number_settings.register_of(
            session, village.code, spec.id, spec.classification, local.year
        )
        content = letter_content(
            session,
            spec,
            request,
            village,
            signer_user,
            None,
            local.date(),
            signer_prefix=capacity.prefix,
            signer_on_behalf=(
                (capacity.on_behalf, acting.own_title(capacity.own_role or actor.role, village))
                if capacity.on_behalf
                else None
            ),
        )
        return _Draft(
            request=request,
            spec=spec,
            target=target,
            issued_at=issued_at,
            content=content,
            signer_user=signer_user,
            location=f"{village.kind_label.title()} {village.name}, Kabupaten Sukoharjo",
            classification=code,
            register=register,
            seq=numbering.peek(session, register),
        )

    def _make(self, draft: _Draft, seq: int, signer: LoadedSigner) -> _Made:
        """Render, seal and sign the letter with number ``seq`` (no transaction open)."""
        made, blank = self._blank(draft, seq, signer)
        timestamper = _timestamper(self.settings.tsa_url, self.settings.keys_dir)
        return self._finish(made, produce(blank, signer, timestamper, self._archive(signer)))

    def _blank(self, draft: _Draft, seq: int, signer: LoadedSigner) -> tuple[_Made, Blank]:
        """Letter ``seq`` with its code and seal, for ``produce``; ``_finish`` completes it."""
        spec, local = draft.spec, draft.issued_at.astimezone(WIB)
        number = format_number(
            spec.number_format,
            classification=draft.classification,
            seq=seq,
            village_code=draft.village_code,
            month=local.month,
            year=local.year,
        )
        code = new_verify_code()
        content = replace(draft.content, number=number)
        facts = public_facts(spec, content)  # as printed: the page and the seal show them
        seal = seal_for_letter(self.settings.keys_dir, code, content, facts)
        blank = Blank(
            template_path=spec.template_path,
            content=content,
            verify_url=f"{self.settings.public_url}/v/{code}",
            qr_text=qr_text(self.settings.public_url, code, seal),
            paper=self.settings.paper,
            reason=f"{spec.title} Nomor {number}",
            location=draft.location,
        )
        return _Made(seq, code, content, facts, b"", 0.0, 0.0, serial_of(signer.cert)), blank

    @staticmethod
    def _finish(made: _Made, p: Produced) -> _Made:
        done = {"pdf": p.pdf, "render": p.render, "sign": p.sign, "maker": p.maker}
        return replace(made, issued_sha256=p.issued_sha256, **done)

    def _archive(self, signer: LoadedSigner) -> lta.ArchiveData | None:
        """The DSS content for this signer's letters (made once per signer and REVINFO_REUSE);
        None only when a benchmark turns the archival update off (``archival``)."""
        if not self.archival:
            return None
        return lta.archive_for_signer(
            signer,
            self.settings.keys_dir,
            self._cert_status,
            _timestamper(self.settings.tsa_url, self.settings.keys_dir),
            issuing_crl=self._issuing_crl,
        )

    def _issuing_crl(self) -> bytes:
        """The issuing CA's current CRL (DER), as the portal publishes it."""
        with read_only(self.factory) as session:
            return signers.current_crl(session, self.settings.keys_dir).der

    def _cert_status(self, serial: int):
        """A certificate serial as our OCSP responder reports it (for the letter's DSS)."""
        with read_only(self.factory) as session:
            return signers.certificate_status(session, self.settings.keys_dir, serial)

    def _store(
        self,
        session: Session,
        actor: Actor,
        draft: _Draft,
        made: _Made,
        version: int,
        *,
        allocate: bool,
    ) -> Letter:
        """The short write: the request still at ``version``, the signing certificate not
        revoked meanwhile (else SignerRevoked: nothing stored, the number stays free), the
        number still ``made.seq`` (else _NumberTaken rolls it all back), the letter row, its
        effects, and the audited move last (the audit chain's head row is the one lock every
        village shares)."""
        request = load_for_actor(session, actor, draft.request.id, lock=True)
        _check_version(request, version)
        if allocate:
            check_not_revoked(session, actor.user_id, made.serial)
            seq = numbering.allocate(session, draft.register)
            if seq != made.seq:
                raise _NumberTaken(seq)
        letter = self.letter_row(draft, made, request)
        session.add(letter)
        try:
            session.flush()
        except IntegrityError as exc:  # another register took this seq as the mode switched
            if allocate:
                raise _NumberTaken(made.seq) from exc
            raise
        return self.record(session, actor, draft, request, letter, version)

    @staticmethod
    def letter_row(draft: _Draft, made: _Made, request: LetterRequest) -> Letter:
        """The letter's registry row with its signed PDF, not yet added to the session."""
        letter = _letter_row(
            request,
            draft,
            made.content,
            made.facts,
            draft.signer_user,
            draft.issued_at,
            made.seq,
            made.code,
        )
        letter.pdf, letter.signer_serial = made.pdf, made.serial
        letter.pdf_sha256 = made.issued_sha256 or hashlib.sha256(made.pdf).hexdigest()
        return letter

    @staticmethod
    def record(
        session: Session,
        actor: Actor,
        draft: _Draft,
        request: LetterRequest,
        letter: Letter,
        version: int,
    ) -> Letter:
        """After the flushed letter row: what it replaces, its effects, and the audited move
        (last: the audit chain's head row is the one lock every village shares)."""
        if request.replaces_letter_id is not None:
            mark_replaced(session, letter, request.replaces_letter_id, actor)
        apply_effects(session, draft.spec, request)
        move(
            session,
            actor,
            request,
            SIGN,
            draft.target,
            version=version,
            reason=None,
            detail={"number": letter.number, "letter_id": letter.id, "sha256": letter.pdf_sha256},
        )
        return letter

    def preview(self, actor: Actor, request_id: int) -> bytes:
        """The letter as it would read, watermarked DRAFT, with no number and no QR."""
        with transaction(self.factory) as session:
            request = load_for_actor(session, actor, request_id)
            spec = self.catalog.pinned(session, request)
            if request.state not in TERMINAL_STATES:  # an issued letter keeps what it printed
                check_letter_text(spec, request)
            village = session.get(Village, request.village_code)
            head = session.scalar(
                select(User).where(User.village_code == village.code, User.role == "head")
            )
            content = letter_content(
                session, spec, request, village, head, None, self.clock().astimezone(WIB).date()
            )
        return render_letter(
            spec.template_path, content, verify_url=None, paper=self.settings.paper, draft=True
        )


def signer_title_lines(
    village: Village, prefix: str | None = None, on_behalf: tuple[str, str] | None = None
) -> tuple[str, ...]:
    """The signature block's title: "KEPALA DESA GROGOL", "Plt. KEPALA DESA GROGOL" for an
    acting head, or ("a.n. KEPALA DESA GROGOL", "SEKRETARIS DESA") for a staff member signing
    on the head's behalf, ``on_behalf`` being (mark, own title). Prefixes and marks keep their
    own case, as Indonesian letters print them."""
    title = f"{village.head_title.upper()} {village.name.upper()}"
    if on_behalf is not None:
        mark, own = on_behalf
        return (f"{mark} {title}", own.upper())
    return (f"{prefix} {title}",) if prefix else (title,)


def letter_content(
    session: Session,
    spec: WorkflowSpec,
    request: LetterRequest,
    village: Village,
    signer: User | None,
    number: str | None,
    issued_on: date,
    *,
    signer_prefix: str | None = None,
    signer_on_behalf: tuple[str, str] | None = None,
) -> LetterContent:
    residents = {
        r.nik: r
        for r in session.scalars(
            select(Resident).where(Resident.nik.in_(list(request.subjects.values())))
        )
    }
    villages = {village.code: village}
    for r in residents.values():
        if r.village_code not in villages:
            villages[r.village_code] = session.get(Village, r.village_code)
    subjects = {
        role: _person(residents[nik], villages[residents[nik].village_code])
        for role, nik in request.subjects.items()
    }
    fields = spec.validate_data(request.data)
    return LetterContent(
        title=spec.title.upper(),
        number=number,
        village=village_info(session, village),
        signer=SignerInfo(
            title_lines=signer_title_lines(village, signer_prefix, signer_on_behalf),
            name=signer.full_name if signer else "",
            nip=signer.nip if signer else None,
        ),
        subjects=subjects,
        subject_labels={s.name: s.label for s in spec.subjects},
        fields=fields,
        field_labels={f.name: f.label for f in spec.fields},
        issued_on=issued_on,
    )


def _person(resident: Resident, village: Village) -> Person:
    return Person(
        name=resident.name,
        nik=resident.nik,
        birth_place=resident.birth_place,
        birth_date=resident.birth_date,
        sex=SEX_LABELS[resident.sex],
        religion=resident.religion,
        marital_status=resident.marital_status,
        occupation=resident.occupation,
        address=full_address(resident, village),
        citizenship=resident.citizenship or "WNI",
    )


def apply_effects(session: Session, spec: WorkflowSpec, request: LetterRequest) -> None:
    fields = spec.validate_data(request.data)
    for effect in spec.effects:
        if effect.on_state != ISSUED or effect.kind != "mark_deceased":
            continue
        nik = request.subjects.get(effect.subject)
        resident = session.scalar(select(Resident).where(Resident.nik == nik))
        if resident is not None:
            died = fields.get("date_of_death")
            mark_deceased(resident, died if isinstance(died, date) else None)


def _letter_row(
    request: LetterRequest,
    draft: _Draft,
    content: LetterContent,
    facts: list,
    signer_user: User,
    issued_at: datetime,
    seq: int,
    code: str,
) -> Letter:
    """The registry row of an issued letter (its signed PDF is set by the caller)."""
    spec = draft.spec
    subject = content.subjects[spec.subjects[0].name]
    return Letter(
        request_id=request.id,
        village_code=request.village_code,
        workflow_id=spec.id,
        title=spec.title,
        classification=draft.classification,
        register=draft.register.register,
        year=issued_at.astimezone(WIB).year,
        seq=seq,
        number=content.number,
        verify_code=code,
        subject_name=subject.name,
        subject_nik=subject.nik,
        public_facts=facts,
        signer_id=signer_user.id,
        signer_name=signer_user.full_name,
        signer_capacity=" / ".join(content.signer.title_lines),
        issued_at=issued_at,
        status="active",
    )
