"""Errors the core raises; each face maps them to its own answer (HTTP status, exit code).
Messages are Indonesian because they reach the person who made the mistake."""

from __future__ import annotations


class SuratDesaError(Exception):
    """Base class; `str(error)` is a message fit to show the user."""


class InvalidInput(SuratDesaError):
    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class NotFound(SuratDesaError):
    pass


class Forbidden(SuratDesaError):
    pass


class Conflict(SuratDesaError):
    """The request moved on since the caller read it (stale version, or already acted on)."""


class HeadSignerExists(Conflict):
    """A village already has an active head signer: a second one is refused until the first is
    disabled or their certificate revoked (at most one head signer per village, plus the
    declared acting signer)."""


class TooManyAttempts(SuratDesaError):
    """Too many tries from one client address or for one key (a NIK, a tracking code) within a
    window that lifts by itself (citizen identification and status look-ups): answered 429."""
