"""The one table from engine errors to HTTP statuses, used by every face (JSON API, staff app,
public portal). The most specific class comes first; an engine error not listed is a 400."""

from __future__ import annotations

from engine.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SuratDesaError,
    TooManyAttempts,
)
from engine.trust.signer_limit import SignerLocked, SignTooSoon
from engine.trust.signing import SigningError, TsaUnavailable, WrongPassphrase

HTTP_STATUS: tuple[tuple[type[SuratDesaError], int], ...] = (
    (SignerLocked, 423),  # too many wrong passphrases: locked until the regency admin lifts it
    (SignTooSoon, 429),  # a try inside the wait after a wrong passphrase
    (TooManyAttempts, 429),  # citizen identification / status look-ups over their limit
    (WrongPassphrase, 403),
    (TsaUnavailable, 503),  # the timestamp service did not answer: nothing issued, try later
    (InvalidInput, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),  # stale version, finished request, a second head signer, a busy token
    (SigningError, 409),  # the key cannot sign now (certificate expired, ...)
)
DEFAULT_STATUS = 400


def http_status(error: SuratDesaError) -> int:
    """The HTTP status every face answers `error` with."""
    return next((status for cls, status in HTTP_STATUS if isinstance(error, cls)), DEFAULT_STATUS)
