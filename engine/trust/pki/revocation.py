"""Where revocation data is published, and the pointers to it that certificates carry.

Every certificate the server folder issues from now on (signer certificates, the TSA) carries

- a CRL distribution point: ``{url}/pki/issuing-ca.crl`` (the issuing CA's CRL), and
- an Authority Information Access: OCSP at ``{url}/pki/ocsp``, the issuer's certificate at
  ``{url}/pki/issuing-ca.cer``;

and the issuing CA certificate, signed by the offline root, points at the root's CRL
``{url}/pki/root-ca.crl`` (made offline, installed in the server folder; no OCSP for the
root's one child: the root key never comes online).

``{url}`` is the deployment's public URL (SURATDESA_PUBLIC_URL) as it was when the key folder
was made: it is written once into the folder (``publication-url``), because certificates keep
their addresses for years and every app server sharing the folder must issue the same ones. A
folder made before this has no such file: its certificates carry no pointers, as before, and
``suratdesa keys publication-url`` adds one for the certificates issued after it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from engine.trust.pki.certificates import PkiError, _write_replace

PUBLICATION_FILE = "publication-url"
ROOT_CRL_FILE = "root-ca.crl"
CRL_PATH = "/pki/issuing-ca.crl"
ROOT_CRL_PATH = "/pki/root-ca.crl"
OCSP_PATH = "/pki/ocsp"
ISSUER_CERT_PATH = "/pki/issuing-ca.cer"


def check_public_url(url: str) -> str:
    """An absolute http(s) URL without query or fragment, without the trailing slash."""
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise PkiError(f"Not a public http(s) base URL: {url!r}")
    return url


def publication_url(keys_dir: Path) -> str | None:
    """The base URL the folder's certificates point at, or None (a folder made before)."""
    path = Path(keys_dir) / PUBLICATION_FILE
    if not path.exists():
        return None
    return check_public_url(path.read_text())


def set_publication_url(keys_dir: Path, url: str, *, replace: bool = False) -> str:
    """Write the folder's publication URL if it has none (or ``replace``). Returns the URL in
    force: an existing one is kept unless ``replace`` (certificates already issued keep theirs;
    the old address must then stay served too)."""
    url = check_public_url(url)
    current = publication_url(keys_dir)
    if current is not None and not replace:
        return current
    Path(keys_dir).mkdir(parents=True, exist_ok=True)
    _write_replace(Path(keys_dir) / PUBLICATION_FILE, (url + "\n").encode())
    return url


def signer_pointers(keys_dir: Path) -> list[tuple[x509.ExtensionType, bool]]:
    """The CRL distribution point and AIA (OCSP, issuer certificate) extensions for a
    certificate issued by the issuing CA; empty when the folder has no publication URL."""
    base = publication_url(keys_dir)
    if base is None:
        return []
    return [
        (_crl_point(base + CRL_PATH), False),
        (
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(base + OCSP_PATH),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(base + ISSUER_CERT_PATH),
                    ),
                ]
            ),
            False,
        ),
    ]


def issuing_ca_pointers(public_url: str | None) -> list[tuple[x509.ExtensionType, bool]]:
    """The root CRL distribution point for the issuing CA certificate the root signs."""
    if not public_url:
        return []
    return [(_crl_point(check_public_url(public_url) + ROOT_CRL_PATH), False)]


def _crl_point(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def with_pointers(
    builder: x509.CertificateBuilder, extensions: list[tuple[x509.ExtensionType, bool]]
) -> x509.CertificateBuilder:
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder
