"""The certificate revocation lists: the issuing CA's (signer and TSA certificates, signed
online by the issuing CA key, as the ceremony set it up) and the root's (the issuing CA
certificate, signed offline by the root key once a year, installed in the server folder)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from engine.trust.pki.ceremony import load_issuing_ca_key, load_root_ca
from engine.trust.pki.certificates import PkiError, _load_pair, _write_replace, root_paths
from engine.trust.pki.revocation import ROOT_CRL_FILE

CRL_VALID = timedelta(days=7)
# A signed CRL is served again while the revoked set is unchanged and it is younger than this,
# so it is cacheable (one ETag) and its nextUpdate stays days ahead.
CRL_REUSE = timedelta(hours=1)
# The root's CRL is signed on the offline machine: once a year is the ceremony's rhythm.
ROOT_CRL_VALID = timedelta(days=365)

# (serial, revoked_at) or (serial, revoked_at, RFC 5280 reason or None)
RevokedEntry = tuple[int, datetime] | tuple[int, datetime, x509.ReasonFlags | None]


@dataclass(frozen=True)
class PublishedCrl:
    der: bytes
    this_update: datetime
    next_update: datetime
    etag: str  # strong ETag: the SHA-256 of the DER bytes, quoted


def _entries(revoked: Iterable[RevokedEntry]) -> tuple[tuple[int, datetime, object], ...]:
    out = []
    for entry in revoked:
        serial, revoked_at, reason = (*entry, None)[:3]
        out.append((int(serial), revoked_at, reason))
    return tuple(sorted(out, key=lambda e: e[0]))


def _sign(
    issuer_cert: x509.Certificate,
    issuer_key,
    revoked: Iterable[RevokedEntry],
    now: datetime,
    valid: timedelta,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(now + valid)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
    )
    for serial, revoked_at, reason in _entries(revoked):
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason is not None and reason != x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def build_crl(
    keys_dir: Path, revoked: Iterable[RevokedEntry], *, now: datetime | None = None
) -> bytes:
    """The issuing CA's CRL (DER) listing the given revoked certificates, freshly signed."""
    issuing_cert, issuing_key = load_issuing_ca_key(keys_dir)
    return _sign(issuing_cert, issuing_key, revoked, now or datetime.now(UTC), CRL_VALID)


_cache: dict[str, tuple[tuple, PublishedCrl]] = {}
_cache_lock = threading.Lock()


def published_crl(
    keys_dir: Path, revoked: Iterable[RevokedEntry], *, now: datetime | None = None
) -> PublishedCrl:
    """The issuing CA's CRL as the portal serves it: signed again only when the revoked set
    changed (a revocation shows in the next request) or the last one is CRL_REUSE old."""
    now = now or datetime.now(UTC)
    entries = _entries(revoked)
    key = str(Path(keys_dir).resolve())
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == entries and now - hit[1].this_update < CRL_REUSE:
            return hit[1]
        from engine.trust.pki.ocsp import issuing_ca_in_memory

        issuing_cert, issuing_key = issuing_ca_in_memory(keys_dir)
        der = _sign(issuing_cert, issuing_key, entries, now, CRL_VALID)
        crl = x509.load_der_x509_crl(der)
        published = PublishedCrl(
            der, crl.last_update_utc, crl.next_update_utc, f'"{hashlib.sha256(der).hexdigest()}"'
        )
        _cache[key] = (entries, published)
        return published


# --------------------------------------------------------------------------- the root's CRL


def sign_root_crl(
    root_dir: Path,
    revoked: Iterable[RevokedEntry] = (),
    *,
    valid: timedelta = ROOT_CRL_VALID,
    now: datetime | None = None,
) -> bytes:
    """Offline: the root's CRL (DER) over the CA certificates it issued; normally empty. Writes
    ``root-ca.crl`` in the root folder too and returns it."""
    rp = root_paths(root_dir)
    if not rp.key.exists():
        raise PkiError(f"No root key in {rp.root_dir}: the root CRL is signed offline there")
    root_cert, root_key = _load_pair(rp.cert, rp.key)
    der = _sign(root_cert, root_key, revoked, now or datetime.now(UTC), valid)
    _write_replace(rp.root_dir / ROOT_CRL_FILE, der)
    return der


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(data)
    except ValueError:
        try:
            return x509.load_pem_x509_crl(data)
        except ValueError as e:
            raise PkiError("Not a certificate revocation list (DER or PEM)") from e


def install_root_crl(keys_dir: Path, data: bytes) -> x509.CertificateRevocationList:
    """Server: install the root's CRL (from ``keys root crl``) after checking that the root
    signed it and that it is newer than the one installed."""
    crl = load_crl(data)
    root = load_root_ca(keys_dir)
    try:
        if crl.issuer != root.subject or not crl.is_signature_valid(root.public_key()):
            raise InvalidSignature
    except (InvalidSignature, TypeError):
        raise PkiError("The CRL is not signed by this server's root CA") from None
    current = root_crl(keys_dir)
    if current is not None and crl.last_update_utc < current.last_update_utc:
        raise PkiError("The installed root CRL is newer; not replaced")
    _write_replace(Path(keys_dir) / ROOT_CRL_FILE, crl.public_bytes(serialization.Encoding.DER))
    return crl


def root_crl(keys_dir: Path) -> x509.CertificateRevocationList | None:
    path = Path(keys_dir) / ROOT_CRL_FILE
    return x509.load_der_x509_crl(path.read_bytes()) if path.exists() else None


def ensure_dev_root_crl(keys_dir: Path, root_dir: Path, *, now: datetime | None = None) -> None:
    """Development (root key at hand): a root CRL in the server folder, renewed when less than
    a quarter of its year is left."""
    now = now or datetime.now(UTC)
    current = root_crl(keys_dir)
    if current is not None and current.next_update_utc - now > ROOT_CRL_VALID / 4:
        return
    if not root_paths(root_dir).key.exists():
        return
    install_root_crl(keys_dir, sign_root_crl(root_dir, now=now))
