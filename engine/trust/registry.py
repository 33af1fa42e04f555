"""The registry as the verifier sees it, and the one verdict every face asks for.

``verify_letter`` (the CLI, tests) and ``finish_verdict`` (the portal, whose file check runs in a
sandboxed worker first) both end in ``engine.trust.verification.with_registry`` with the same two
lookups: the letter by the SHA-256 of its issued bytes, and the signer certificate's revocation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.storage.db import transaction
from engine.storage.models import Letter, RevokedCertificate
from engine.trust import pki
from engine.trust.verification import (
    CertRevocation,
    CryptoOk,
    RegistryEntry,
    Verdict,
    crypto_check,
    with_registry,
)


def registry_lookup(factory: sessionmaker[Session]) -> Callable[[str], RegistryEntry | None]:
    def lookup(sha256_hex: str) -> RegistryEntry | None:
        with transaction(factory) as session:
            letter = session.scalar(select(Letter).where(Letter.pdf_sha256 == sha256_hex))
            if letter is None:
                return None
            return RegistryEntry(
                status=letter.status, number=letter.number, verify_code=letter.verify_code
            )

    return lookup


def cert_revocation_lookup(
    factory: sessionmaker[Session],
) -> Callable[[str], CertRevocation | None]:
    def lookup(serial_hex: str) -> CertRevocation | None:
        with transaction(factory) as session:
            row = session.get(RevokedCertificate, serial_hex)
            return CertRevocation(row.revoked_at, row.reason) if row else None

    return lookup


def finish_verdict(result: Verdict | CryptoOk, factory: sessionmaker[Session]) -> Verdict:
    """Complete a file check (``crypto_check``) with the registry of this deployment."""
    return with_registry(result, registry_lookup(factory), cert_revocation_lookup(factory))


def verify_letter(
    pdf: bytes, factory: sessionmaker[Session], keys_dir: Path, *, at: datetime | None = None
) -> Verdict:
    """The verdict on a PDF against this deployment's trust roots and registry."""
    result = crypto_check(pdf, trust_roots=pki.load_trust_roots(keys_dir), at=at)
    return finish_verdict(result, factory)
