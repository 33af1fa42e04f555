"""The public verification portal: the page a QR opens (/v/{code}), the upload check
(/verify and /api/public/verify), and the trust publication (/pki/).

Privacy (UU 27/2022): a letter is found only by its unguessable code; no search by name or NIK;
the NIK is masked. Abuse: per-address rate limits counted in the database (all processes).
"""

from __future__ import annotations

from verify_portal import letters, pki_pages, statistics, upload  # noqa: F401 - they add their pages
from verify_portal.common import router

__all__ = ["router"]
