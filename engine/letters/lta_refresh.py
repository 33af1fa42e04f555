"""Archive renewal of issued letters (PAdES B-LTA): before the TSA certificate of a letter's
newest document timestamp expires, append a fresh DSS and a new document timestamp.

Run periodically by the worker (engine.jobs.queue, daily) and by hand with
``suratdesa letters lta-refresh``. A letter is refreshed when its newest document timestamp was
made under a TSA certificate that expires within ``window`` (default one year) and the TSA we
use now has a certificate that lasts longer; a letter issued before B-LTA (no document
timestamp at all) is brought up to B-LTA the same way.

- Where: the renewed file replaces ``letters.pdf`` (what staff download and the API serves),
  as an incremental update of it: it begins with every byte of the previous copy. The registry
  key ``letters.pdf_sha256`` is the hash of the certified revision and never changes, so a
  copy handed out at issue and the renewed copy are both the same letter to the verdict
  (engine.trust.verification looks the certified revision up; engine.trust.pdf_updates allows
  exactly DSS and document-timestamp updates after it).
- Idempotent: a renewed letter's newest timestamp is by the current TSA certificate, so the
  next run skips it (and if that certificate itself expires within the window, nothing is
  renewed: the report says the TSA certificate needs renewing, ``tsa_expiring``).
- Resumable: one short write per letter, which re-reads the row and stores only if its PDF is
  still the one renewed (a concurrent run or a crash loses nothing and doubles nothing).
- Safe: a renewed file is stored only if our own verdict's file check accepts it.
- Audited: one audit event per run that changed or failed anything, with the counts
  (``letters.lta_refresh``); a run that found nothing to do writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO

from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import TimeStamper
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.people import signers
from engine.people.users import Actor
from engine.storage import audit
from engine.storage.db import read_only, transaction
from engine.storage.models import Letter
from engine.trust import lta, pki
from engine.trust.signing import make_timestamper
from engine.trust.verification import CryptoOk, crypto_check

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(days=365)
AUDIT_ACTION = "letters.lta_refresh"
BATCH = 100


@dataclass
class RefreshReport:
    examined: int = 0
    refreshed: int = 0  # a further document timestamp added
    upgraded: int = 0  # a letter issued before B-LTA got its first DSS + document timestamp
    fresh: int = 0  # newest timestamp outlasts the window: nothing to do
    tsa_expiring: int = 0  # due, but the current TSA certificate lasts no longer: skipped
    changed: int = 0  # the row changed while being renewed: left for the next run
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    tsa_not_after: datetime | None = None

    @property
    def stored(self) -> int:
        return self.refreshed + self.upgraded

    def counts(self) -> dict:
        return {
            "examined": self.examined,
            "refreshed": self.refreshed,
            "upgraded": self.upgraded,
            "fresh": self.fresh,
            "tsa_expiring": self.tsa_expiring,
            "changed": self.changed,
            "failed": self.failed,
        }


def _x509(asn1_cert) -> x509.Certificate:
    return x509.load_der_x509_certificate(asn1_cert.dump())


@dataclass(frozen=True)
class _Letter:
    signer: x509.Certificate
    newest_tsa: x509.Certificate | None  # of the newest document timestamp; None: none yet


def _read(pdf: bytes) -> _Letter:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    sigs = sorted(reader.embedded_signatures, key=lambda e: e.signed_revision)
    stamps = [e for e in sigs if e.sig_object_type == "/DocTimeStamp"]
    newest = _x509(stamps[-1].signer_cert) if stamps else None
    return _Letter(_x509(sigs[0].signer_cert), newest)


def decide(letter: _Letter, tsa: x509.Certificate, horizon: datetime) -> str:
    """ "upgrade" | "refresh" | "fresh" | "tsa_expiring" for one letter."""
    if letter.newest_tsa is None:
        return "upgrade"
    until = letter.newest_tsa.not_valid_after_utc
    if until > horizon:
        return "fresh"
    if tsa.not_valid_after_utc <= until:
        return "tsa_expiring"  # the same (or a shorter-lived) TSA certificate: no gain
    return "refresh"


@dataclass
class _Run:
    """One renewal run: the TSA in use, the validation data per signer, the counts."""

    factory: sessionmaker[Session]
    settings: Settings
    timestamper: TimeStamper
    tsa: x509.Certificate
    horizon: datetime
    report: RefreshReport
    archives: dict[int, lta.ArchiveData] = field(default_factory=dict)

    def _status_of(self, serial: int):
        with read_only(self.factory) as session:
            return signers.certificate_status(session, self.settings.keys_dir, serial)

    def _issuing_crl(self) -> bytes:
        with read_only(self.factory) as session:
            return signers.current_crl(session, self.settings.keys_dir).der

    def archive(self, signer: x509.Certificate) -> lta.ArchiveData:
        hit = self.archives.get(signer.serial_number)
        if hit is None or not hit.fresh(datetime.now(UTC)):
            hit = lta.archive_data(
                self.settings.keys_dir,
                [signer],
                self._status_of,
                tsa_cert=self.tsa,
                require_good=False,  # an archive records the status as it is now
                issuing_crl=self._issuing_crl(),
            )
            self.archives[signer.serial_number] = hit
        return hit

    def letter(self, letter_id: int, pdf: bytes) -> None:
        """Renew one letter if it needs it: counted in the report; raises on failure."""
        report = self.report
        report.examined += 1
        state = _read(pdf)
        kind = decide(state, self.tsa, self.horizon)
        if kind in ("fresh", "tsa_expiring"):
            setattr(report, kind, getattr(report, kind) + 1)
            return
        renewed = lta.refresh_pdf(pdf, self.archive(state.signer), self.timestamper)
        roots = pki.load_trust_roots(self.settings.keys_dir)
        checked = crypto_check(renewed, trust_roots=roots)
        if not isinstance(checked, CryptoOk):
            raise ValueError("; ".join(checked.reasons))
        with transaction(self.factory) as session:
            current = session.scalar(
                select(Letter.pdf).where(Letter.id == letter_id).with_for_update()
            )
            if current != pdf:  # renewed or changed meanwhile: left for the next run
                report.changed += 1
                return
            session.execute(update(Letter).where(Letter.id == letter_id).values(pdf=renewed))
        if kind == "upgrade":
            report.upgraded += 1
        else:
            report.refreshed += 1


def _audit(factory: sessionmaker[Session], actor: Actor, report: RefreshReport, window) -> None:
    detail = {**report.counts(), "window_days": window.days,
              "tsa_not_after": report.tsa_not_after.isoformat()}  # fmt: skip
    if report.errors:
        detail["errors"] = report.errors[:20]
    with transaction(factory) as session:
        audit.append(
            session,
            actor_id=actor.user_id,
            actor=actor.username,
            role=actor.role,
            action=AUDIT_ACTION,
            detail=detail,
        )


def refresh_archives(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    actor: Actor,
    window: timedelta = DEFAULT_WINDOW,
    limit: int | None = None,
    now: datetime | None = None,
    timestamper: TimeStamper | None = None,
) -> RefreshReport:
    """Renew the letters that need it (see the module docstring); at most ``limit`` stored per
    run (the rest the next run). Returns the counts, also written to the audit log."""
    timestamper = timestamper or make_timestamper(settings.tsa_url, settings.keys_dir)
    tsa = lta.tsa_certificate(timestamper, settings.keys_dir)
    report = RefreshReport(tsa_not_after=tsa.not_valid_after_utc)
    run = _Run(factory, settings, timestamper, tsa, (now or datetime.now(UTC)) + window, report)
    after = 0
    while limit is None or report.stored < limit:
        with read_only(factory) as session:
            rows = session.execute(
                select(Letter.id, Letter.number, Letter.pdf)
                .where(Letter.id > after)
                .order_by(Letter.id)
                .limit(BATCH)
            ).all()
        if not rows:
            break
        for letter_id, number, pdf in rows:
            if limit is not None and report.stored >= limit:
                break
            after = letter_id
            try:
                run.letter(letter_id, pdf)
            except Exception as e:  # noqa: BLE001 - one bad letter must not stop the run
                report.failed += 1
                report.errors.append(f"{number}: {type(e).__name__}: {e}")
                log.warning("lta-refresh: letter %s not renewed: %s", number, e)
    if report.stored or report.failed:
        _audit(factory, actor, report, window)
    return report


__all__ = ["AUDIT_ACTION", "DEFAULT_WINDOW", "RefreshReport", "decide", "refresh_archives"]
