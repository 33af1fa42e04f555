"""The certificate revocation list of the issuing CA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from engine.trust.pki.ceremony import load_issuing_ca_key

CRL_VALID = timedelta(days=7)


def build_crl(
    keys_dir: Path, revoked: list[tuple[int, datetime]], *, now: datetime | None = None
) -> bytes:
    """The issuing CA's CRL (DER) listing the given (serial, revoked_at) signer certificates."""
    issuing_cert, issuing_key = load_issuing_ca_key(keys_dir)
    now = now or datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing_cert.subject)
        .last_update(now)
        .next_update(now + CRL_VALID)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
    )
    for serial, revoked_at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revoked_at)
            .build()
        )
    crl = builder.sign(issuing_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)
