"""Audit log checkpoints, anchored outside the database: signed by the audit anchor key,
timestamped by the TSA, written as files under Settings.audit_dir that are never overwritten,
and `verify_log`, which checks the chain against every one of them."""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.dates import format_wib
from engine.errors import SuratDesaError
from engine.storage.audit import ChainReport, verify_chain
from engine.storage.db import transaction
from engine.storage.models import AuditEvent, AuditHead
from engine.timeutil import now_utc

# --------------------------------------------------------------------------- checkpoints
#
# A checkpoint file (``checkpoint-<last id, 12 digits>.json``) holds:
#   "checkpoint": {type, version, last_id, last_hash, events, created_at, public_url}
#   "signature":  ECDSA P-256 / SHA-256 over the canonical JSON of "checkpoint", with the
#                 audit anchor certificate (issued by the issuing CA)
#   "timestamp":  an RFC 3161 token whose imprint is the SHA-256 of that signature value
#
# The anchor key is dedicated (keys_dir/audit-anchor.key.pem) rather than the seal key or the
# issuing CA: the seal key signs COSE seals anyone can collect from QR codes and the CA key signs
# certificates; a key used for one message format only cannot be tricked into vouching for
# another, and it can be rotated or moved to an HSM on its own schedule. Its certificate chains
# to the regency root, so a third party can check a downloaded checkpoint too.

CHECKPOINT_TYPE = "suratdesa-audit-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d{12})\.json$")
ANCHOR_CERT = "audit-anchor.pem"
ANCHOR_KEY = "audit-anchor.key.pem"
ANCHOR_VALID_DAYS = 10 * 365
DEFAULT_MAX_AGE = timedelta(hours=24)
# The TSA's time may lag our clock a little, or follow after a slow TSA round trip.
_TS_EARLY = timedelta(minutes=5)
_TS_LATE = timedelta(hours=1)


class AuditError(SuratDesaError):
    """The audit log or its checkpoints cannot be trusted: no new checkpoint is made."""


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the file name, e.g. checkpoint-000000000042.json
    path: Path
    last_id: int
    last_hash: str = ""
    events: int = 0
    created_at: datetime | None = None
    public_url: str = ""
    error: str | None = None  # the file could not be read as a checkpoint

    @property
    def label(self) -> str:
        """How reports name this checkpoint: file name and time."""
        when = wib(self.created_at) if self.created_at else "time unreadable"
        return f"checkpoint {self.name} ({when})"


def wib(at: datetime) -> str:
    return format_wib(at, seconds=True)


def _json(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def checkpoint_name(last_id: int) -> str:
    return f"checkpoint-{last_id:012d}.json"


def _parse(path: Path, last_id: int) -> Checkpoint:
    try:
        doc = json.loads(path.read_bytes())
        body = doc["checkpoint"]
        if body.get("type") != CHECKPOINT_TYPE or body.get("version") != CHECKPOINT_VERSION:
            raise ValueError("not a Surat Desa audit checkpoint")
        created = datetime.fromisoformat(body["created_at"])
        if created.tzinfo is None:
            raise ValueError("created_at has no time zone")
        cp = Checkpoint(
            name=path.name,
            path=path,
            last_id=int(body["last_id"]),
            last_hash=str(body["last_hash"]),
            events=int(body["events"]),
            created_at=created,
            public_url=str(body["public_url"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Checkpoint(
            name=path.name, path=path, last_id=last_id, error=str(exc) or "unreadable"
        )
    if cp.last_id != last_id:
        return replace(cp, error=f"the file name says event {last_id}, the content {cp.last_id}")
    return cp


def list_checkpoints(audit_dir: Path) -> list[Checkpoint]:
    """Every checkpoint file in audit_dir, newest (highest last id) first. Files that do not
    parse are listed too, with ``error`` set, so a verifier cannot overlook them."""
    audit_dir = Path(audit_dir)
    if not audit_dir.is_dir():
        return []
    found = []
    for path in audit_dir.iterdir():
        m = CHECKPOINT_NAME.match(path.name)
        if m and path.is_file():
            found.append(_parse(path, int(m.group(1))))
    return sorted(found, key=lambda cp: cp.last_id, reverse=True)


def read_checkpoint(audit_dir: Path, name: str) -> bytes | None:
    """The bytes of one published checkpoint file, or None (also for any name that is not
    exactly a checkpoint file name: no path ever leaves audit_dir)."""
    if not CHECKPOINT_NAME.match(name):
        return None
    try:
        return (Path(audit_dir) / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


# ----- the anchor key


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Write data to path only if path does not exist, atomically: a reader sees either no
    file or the whole file, and an existing file is never replaced. False if it existed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)  # atomic, and fails if the name is taken (also on NFS)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def anchor_key(keys_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The audit anchor's P-256 key and its certificate, made on first use (under a file lock,
    never overwritten), issued by the issuing CA."""
    from engine.trust import pki

    keys_dir = Path(keys_dir)
    cert_path, key_path = keys_dir / ANCHOR_CERT, keys_dir / ANCHOR_KEY
    if not (cert_path.exists() and key_path.exists()):
        with _flock(keys_dir / ".audit-anchor.lock"):
            if cert_path.exists() != key_path.exists():
                raise AuditError(f"Only one of {ANCHOR_CERT} / {ANCHOR_KEY} exists in {keys_dir}")
            if not cert_path.exists():
                _new_anchor(keys_dir, pki.load_issuing_ca_key(keys_dir))
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _spki(key.public_key()) != _spki(
        cert.public_key()
    ):
        raise AuditError(f"{key_path} does not belong to {cert_path}")
    return cert, key


def _new_anchor(keys_dir: Path, issuer: tuple[x509.Certificate, Any]) -> None:
    issuing_cert, issuing_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    org = issuing_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    names = [x509.NameAttribute(NameOID.COUNTRY_NAME, "ID")]
    if org:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(org[0].value)))
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, "Jangkar Log Audit Surat Desa"))
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=ANCHOR_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()),
            critical=False,
        )
        .sign(issuing_key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(keys_dir / ANCHOR_KEY, pem, 0o600)
    _write_new(keys_dir / ANCHOR_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# ----- making checkpoints


def make_checkpoint(factory: sessionmaker[Session], settings: Settings) -> Checkpoint | None:
    """Anchor the chain as it stands now. None when there is nothing new to anchor (an empty
    log, or a checkpoint for the current last event exists already). Refuses (AuditError) to
    anchor a log that does not verify against its chain and its earlier checkpoints."""
    return _checkpoint(factory, settings, max_age=None)


def ensure_checkpoint(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> Checkpoint | None:
    """The automatic checkpoint: make one only when the newest is older than max_age (or there
    is none) and the log moved on since. Safe to call from every app process at once: a file
    lock serialises callers on one host and the write itself never replaces an existing file."""
    return _checkpoint(factory, settings, max_age=max_age)


def _checkpoint(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    max_age: timedelta | None,
) -> Checkpoint | None:
    audit_dir = Path(settings.audit_dir)
    audit_dir.mkdir(parents=True, exist_ok=True)
    with _flock(audit_dir / ".checkpoint.lock"):
        now = now_utc()
        existing = list_checkpoints(audit_dir)
        if max_age is not None and existing:
            newest = existing[0]
            if newest.created_at is not None and newest.created_at > now - max_age:
                return None
        with transaction(factory) as session:
            head = session.get(AuditHead, 1)
            if head is None or head.last_id == 0:
                return None
            last_id, last_hash = head.last_id, head.last_hash
        if (audit_dir / checkpoint_name(last_id)).exists():
            return None
        report = verify_log(factory, settings, checkpoints=existing)
        if not report.ok:
            raise AuditError(
                "Log audit tidak utuh; titik periksa baru tidak dibuat: "
                + "; ".join(report.problems)
            )
        with transaction(factory) as session:
            events = session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.id <= last_id)
            )
            stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == last_id))
        if stored != last_hash:
            raise AuditError(f"Kepala log audit menunjuk peristiwa {last_id} yang tidak cocok")
        body = {
            "type": CHECKPOINT_TYPE,
            "version": CHECKPOINT_VERSION,
            "last_id": last_id,
            "last_hash": last_hash,
            "events": int(events or 0),
            # taken now, not before the checks above: the TSA's time must agree with it
            "created_at": now_utc().isoformat(timespec="seconds"),
            "public_url": settings.public_url,
        }
        doc = _sign_and_stamp(body, settings)
        path = audit_dir / checkpoint_name(last_id)
        data = json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"
        if not _write_new(path, data, 0o444):
            return None
        return _parse(path, last_id)


def _sign_and_stamp(body: dict, settings: Settings) -> dict:
    from engine.aio import run_sync
    from engine.trust.signing import make_timestamper

    cert, key = anchor_key(settings.keys_dir)
    signature = key.sign(_json(body), ec.ECDSA(hashes.SHA256()))
    timestamper = make_timestamper(settings.tsa_url, settings.keys_dir)
    token = run_sync(timestamper.async_timestamp(hashlib.sha256(signature).digest(), "sha256"))
    return {
        "checkpoint": body,
        "signature": {
            "algorithm": "ecdsa-with-SHA256",
            "value": base64.b64encode(signature).decode(),
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        },
        "timestamp": {
            "rfc3161_token": base64.b64encode(token.dump()).decode(),
            "imprint": "SHA-256 of the signature value",
        },
    }


# ----- verifying


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    chain: ChainReport
    latest: Checkpoint | None  # the newest checkpoint found, None when there is none
    checkpoints: int  # how many checkpoint files were checked
    problems: list[str]  # each names the checkpoint it concerns
    timestamp: datetime | None = None  # the TSA's time on the newest checkpoint


def verify_log(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    checkpoints: list[Checkpoint] | None = None,
) -> AuditReport:
    """The audit log's verdict: the hash chain, and the chain against every checkpoint. The
    newest checkpoint must carry a valid anchor signature and a trusted RFC 3161 timestamp, and
    every checkpoint's last event must still exist with exactly its recorded hash, with at least
    as many events in the chain as it counted. A wipe, a truncation or a chain recomputed after
    an edit fails here even when the chain on its own looks intact."""
    with transaction(factory) as session:
        chain = verify_chain(session)
    if checkpoints is None:
        checkpoints = list_checkpoints(settings.audit_dir)
    problems: list[str] = []
    if not chain.ok:
        problems.append(f"chain broken after {chain.events} good events: {chain.problem}")
    stamped_at = None
    anchor_spki = _current_anchor_spki(settings.keys_dir)
    with transaction(factory) as session:
        for i, cp in enumerate(checkpoints):
            if cp.error:
                problems.append(f"{cp.label}: unreadable ({cp.error})")
                continue
            try:
                doc = json.loads(cp.path.read_bytes())
                signature = _check_signature(doc, settings.keys_dir, anchor_spki)
                if i == 0:
                    stamped_at = _check_timestamp(doc, signature, cp, settings.keys_dir)
            except (_Bad, ValueError, KeyError, TypeError) as exc:
                problems.append(f"{cp.label}: {exc}")
                continue
            stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.id == cp.last_id))
            if stored is None:
                problems.append(
                    f"{cp.label} records event {cp.last_id} with hash {cp.last_hash[:16]}…, "
                    f"but the log has no event {cp.last_id} (now {chain.events} events): "
                    "the log was wiped or truncated"
                )
            elif stored != cp.last_hash:
                problems.append(
                    f"{cp.label} records event {cp.last_id} with hash {cp.last_hash[:16]}…, "
                    f"but the log's event {cp.last_id} has hash {stored[:16]}…: "
                    "history up to that event was rewritten"
                )
            elif chain.events < cp.events:
                problems.append(
                    f"{cp.label} counted {cp.events} events, the chain has {chain.events}: "
                    "events were removed"
                )
    return AuditReport(
        ok=not problems,
        chain=chain,
        latest=checkpoints[0] if checkpoints else None,
        checkpoints=len(checkpoints),
        problems=problems,
        timestamp=stamped_at,
    )


class _Bad(SuratDesaError):
    pass


def _current_anchor_spki(keys_dir: Path) -> bytes | None:
    path = Path(keys_dir) / ANCHOR_CERT
    if not path.exists():
        return None
    return _spki(x509.load_pem_x509_certificate(path.read_bytes()).public_key())


def _check_signature(doc: dict, keys_dir: Path, anchor_spki: bytes | None) -> bytes:
    from engine.trust import pki

    body = doc["checkpoint"]
    sig = doc["signature"]
    try:
        cert = x509.load_pem_x509_certificate(sig["certificate"].encode())
        signature = base64.b64decode(sig["value"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise _Bad(f"signature unreadable ({exc})") from exc
    if anchor_spki is None:
        raise _Bad(f"no audit anchor certificate ({ANCHOR_CERT}) in the keys folder to check it")
    # Pinned to this deployment's anchor key: a signer's key, also issued by the issuing CA,
    # must not be able to vouch for a checkpoint.
    if _spki(cert.public_key()) != anchor_spki:
        raise _Bad("signed by a key that is not this deployment's audit anchor")
    try:
        cert.verify_directly_issued_by(pki.load_issuing_ca(keys_dir))
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise _Bad("the anchor certificate was not issued by our issuing CA") from exc
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise _Bad("the anchor certificate does not hold an EC key")
    try:
        public.verify(signature, _json(body), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise _Bad("signature does not match its content (the file was altered)") from exc
    return signature


def _check_timestamp(doc: dict, signature: bytes, cp: Checkpoint, keys_dir: Path) -> datetime:
    from asn1crypto import cms
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus
    from pyhanko_certvalidator import ValidationContext

    from engine.aio import run_sync
    from engine.trust import pki

    try:
        token = cms.ContentInfo.load(base64.b64decode(doc["timestamp"]["rfc3161_token"]))
        signed_data = token["content"]
        roots = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
            for c in pki.load_trust_roots(keys_dir)
        ]
        issuing = asn1_x509.Certificate.load(
            pki.load_issuing_ca(keys_dir).public_bytes(serialization.Encoding.DER)
        )
        context = ValidationContext(trust_roots=roots, other_certs=[issuing], allow_fetching=False)
        status = TimestampSignatureStatus(
            **run_sync(
                validate_tst_signed_data(
                    signed_data, context, lambda algo: hashlib.new(algo, signature).digest()
                )
            )
        )
    except (SignatureValidationError, ValueError, KeyError, TypeError) as exc:
        raise _Bad(f"timestamp unreadable or invalid ({exc})") from exc
    if not status.intact:
        raise _Bad("the timestamp does not cover this signature")
    if not (status.valid and status.trusted):
        raise _Bad("the timestamp is not from a TSA this deployment trusts")
    stamped: datetime = status.timestamp
    assert cp.created_at is not None
    if not (cp.created_at - _TS_EARLY <= stamped <= cp.created_at + _TS_LATE):
        raise _Bad(
            f"the timestamp ({wib(stamped)}) does not match the checkpoint's time "
            f"({wib(cp.created_at)})"
        )
    return stamped
