"""The OCSP responder (RFC 6960) for the certificates the issuing CA issued, built on
``cryptography``'s x509.ocsp builders.

Responses are signed by the issuing CA key itself, not by a delegated responder certificate:
that key is already online in the server folder and already signs the CRL, so a delegated
id-kp-OCSPSigning key would live in the same folder and add nothing but a second key to
protect and renew (and, with id-pkix-ocsp-nocheck, a certificate nobody could revoke). Signed
by the CA, a response needs no extra certificate chain and no extra revocation check.

What the responder says about a serial comes from the caller (the database): ``good`` for a
certificate we issued and did not revoke, ``revoked`` with its time and RFC 5280 reason,
``unknown`` for a serial we never issued. A request about another issuer is answered
``unauthorized``; a request that is not DER OCSP ``malformedRequest``.

Signing is the expensive part (RSA 3072), so a signed response for a serial is kept for
RESPONSE_REUSE and served again while that serial's status is unchanged: the status is read
on every request, so a revocation shows at once. A request with a nonce gets a fresh response
that echoes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from engine.trust.pki.ceremony import load_issuing_ca_key
from engine.trust.pki.certificates import pki_paths

# A response says "valid until nextUpdate"; a relying party may cache it that long.
OCSP_VALID = timedelta(hours=1)
RESPONSE_REUSE = timedelta(minutes=1)
MAX_REQUEST = 4096  # a one-certificate request is about 100 bytes; with a nonce, 120


@dataclass(frozen=True)
class CertStatus:
    """A serial as the registry knows it."""

    issued: bool
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None


@dataclass(frozen=True)
class OcspAnswer:
    der: bytes
    this_update: datetime | None  # None for an error response (not cacheable)
    next_update: datetime | None
    status: str  # "good" | "revoked" | "unknown" | an error status name
    shared: bool = True  # may be cached and served to anyone (False: an error, or a nonce)


_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
           "sha512": hashes.SHA512}  # fmt: skip
_cache: dict[tuple, OcspAnswer] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def _error(status: ocsp.OCSPResponseStatus) -> OcspAnswer:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
    return OcspAnswer(der, None, None, status.name, shared=False)


@lru_cache(maxsize=16)
def _hashes_of(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    return _issuer_hashes(issuer, _HASHES[algorithm]())


def issuing_ca_in_memory(keys_dir: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The issuing CA certificate and key, read from the server folder once per process (and
    again if the files change): loading an RSA key validates it, which costs more than a
    signature. The key stays where the CRL signer already has it, in this process's memory."""
    paths = pki_paths(keys_dir)
    stamp = tuple(p.stat().st_mtime_ns for p in (paths.issuing_cert, paths.issuing_key))
    return _load_issuing(str(Path(keys_dir).resolve()), stamp)


@lru_cache(maxsize=4)
def _load_issuing(keys_dir: str, _stamp: tuple) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return load_issuing_ca_key(Path(keys_dir))


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    key_bits = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The key hash covers the subjectPublicKey BIT STRING's value, not the whole SPKI.
    spki = asn1_keys.PublicKeyInfo.load(key_bits)
    key_hash = hashes.Hash(algorithm)
    key_hash.update(spki["public_key"].contents[1:])
    return name_hash.finalize(), key_hash.finalize()


def answer(
    keys_dir: Path,
    request_der: bytes,
    status_of: Callable[[int], CertStatus],
    *,
    now: datetime | None = None,
) -> OcspAnswer:
    """The DER OCSP response to a DER OCSP request (one certificate per request, as every
    client sends: RFC 5019)."""
    if len(request_der) > MAX_REQUEST:
        return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = _HASHES[request.hash_algorithm.name]()
        serial = request.serial_number
        nonce = _nonce(request)
    except (ValueError, KeyError, UnsupportedAlgorithm):
        return _error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    issuer, issuer_key = issuing_ca_in_memory(keys_dir)
    if (request.issuer_name_hash, request.issuer_key_hash) != _hashes_of(issuer, algorithm.name):
        return _error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    status = status_of(serial)
    now = now or datetime.now(UTC)
    key = (str(Path(keys_dir).resolve()), algorithm.name, serial, status)
    if nonce is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None and now - hit.this_update < RESPONSE_REUSE:
            return hit
    built = _sign(issuer, issuer_key, request, algorithm, status, nonce, now)
    if nonce is None:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = built
    return built


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _sign(
    issuer: x509.Certificate,
    issuer_key,
    request: ocsp.OCSPRequest,
    algorithm: hashes.HashAlgorithm,
    status: CertStatus,
    nonce: bytes | None,
    now: datetime,
) -> OcspAnswer:
    # Whole seconds: GeneralizedTime in OCSP carries no fractions.
    this_update = now.replace(microsecond=0)
    next_update = this_update + OCSP_VALID
    if not status.issued:
        cert_status, word = ocsp.OCSPCertStatus.UNKNOWN, "unknown"
    elif status.revoked_at is not None:
        cert_status, word = ocsp.OCSPCertStatus.REVOKED, "revoked"
    else:
        cert_status, word = ocsp.OCSPCertStatus.GOOD, "good"
    revoked = cert_status == ocsp.OCSPCertStatus.REVOKED
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=cert_status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=status.revoked_at.astimezone(UTC) if revoked else None,
            revocation_reason=_reason(status.reason) if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    response = builder.sign(issuer_key, hashes.SHA256())
    der = response.public_bytes(serialization.Encoding.DER)
    return OcspAnswer(der, this_update, next_update, word, shared=nonce is None)


def _reason(reason: x509.ReasonFlags | None) -> x509.ReasonFlags | None:
    if reason is None or reason == x509.ReasonFlags.unspecified:
        return None  # RFC 5280 5.3.1: leave the reason out rather than say "unspecified"
    return reason


def try_later() -> OcspAnswer:
    """The answer for a client over its rate limit (RFC 6960 tryLater)."""
    return _error(ocsp.OCSPResponseStatus.TRY_LATER)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
