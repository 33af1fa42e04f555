"""The letter registry as the verifier sees it: look a signed revision up by its SHA-256."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.db import transaction
from engine.models import Letter
from engine.verification import RegistryEntry


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
