"""The key ceremony: the offline root CA, the issuing CA requested by CSR and installed on the
server, the TSA and seal keys, and loading what the server trusts."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from engine.trust.pki.certificates import (
    DEFAULT_REGENCY,
    EXTRA_ROOTS_DIR,
    ISSUING_VALID_DAYS,
    KEY_BITS,
    ROOT_VALID_DAYS,
    TSA_VALID_DAYS,
    PkiError,
    PkiPaths,
    RootPaths,
    _cert_pem,
    _existing,
    _key_pem,
    _load_key,
    _load_pair,
    _locked,
    _name,
    _organization,
    _regency_of,
    _same_folder,
    _store,
    _write_new,
    _write_replace,
    certificate_builder,
    default_root_dir,
    key_usage,
    new_key,
    pki_paths,
    root_paths,
)
from engine.trust.pki.revocation import (
    issuing_ca_pointers,
    publication_url,
    set_publication_url,
    signer_pointers,
    with_pointers,
)

# --- the offline root ------------------------------------------------------------------------


def create_root(root_dir: Path, *, regency: str = DEFAULT_REGENCY) -> RootPaths:
    """Create the root CA's key and self-signed certificate in ``root_dir`` (the offline
    folder) if missing. Idempotent: an existing root is checked and kept."""
    rp = root_paths(root_dir)
    if pki_paths(rp.root_dir).issuing_key.exists():
        raise PkiError(f"{rp.root_dir} is a server key folder; the root belongs in its own folder")
    with _locked(rp.root_dir):
        if _existing(rp.cert, rp.key):
            _load_pair(rp.cert, rp.key)
            return rp
        key = new_key()
        subject = _name(regency, f"Root CA Pemerintah {regency}")
        cert = (
            certificate_builder(
                subject, subject, key.public_key(), key.public_key(), ROOT_VALID_DAYS
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        _store(rp.cert, rp.key, cert, key)
    return rp


def load_root_cert_file(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_require(Path(path)).read_bytes())


def write_chain(path: Path, certs: list[x509.Certificate]) -> None:
    """Certificates as one PEM file (the issuing CA, then the root) for `keys install`."""
    _write_replace(Path(path), b"".join(_cert_pem(c) for c in certs))


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        try:
            csr = x509.load_der_x509_csr(data)
        except ValueError as e:
            raise PkiError("Not a certificate signing request (PEM or DER)") from e
    if not csr.is_signature_valid:
        raise PkiError("The request's signature does not match its key")
    key = csr.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < KEY_BITS:
        raise PkiError(f"The request's key must be RSA with at least {KEY_BITS} bits")
    return csr


def sign_issuing_csr(
    root_dir: Path,
    csr: x509.CertificateSigningRequest,
    *,
    valid_days: int = ISSUING_VALID_DAYS,
    public_url: str | None = None,
) -> x509.Certificate:
    """The root (offline) certifies the server's issuing CA key from its CSR.

    Only the subject and the key are taken from the request; what the certificate may do
    (a CA below the root, no further CAs below it) is decided here. With ``public_url`` the
    certificate points at the root's CRL under it (engine.trust.pki.revocation)."""
    rp = root_paths(root_dir)
    if not rp.key.exists():
        raise PkiError(f"No root key in {rp.root_dir}: run `suratdesa keys root init` there")
    root_cert, root_key = _load_pair(rp.cert, rp.key)
    if _organization(csr.subject) != _organization(root_cert.subject):
        raise PkiError(
            f"The request is for {_organization(csr.subject)!r}, "
            f"the root is {_organization(root_cert.subject)!r}"
        )
    if csr.subject == root_cert.subject:
        raise PkiError("The request carries the root's own name")
    days = min(valid_days, (root_cert.not_valid_after_utc - datetime.now(UTC)).days)
    if days < 1:
        raise PkiError("The root certificate has expired")
    builder = (
        certificate_builder(
            csr.subject, root_cert.subject, csr.public_key(), root_key.public_key(), days
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
    )
    builder = with_pointers(builder, issuing_ca_pointers(public_url))
    return builder.sign(root_key, hashes.SHA256())


# --- the server folder -----------------------------------------------------------------------


def request_issuing_ca(keys_dir: Path, *, regency: str = DEFAULT_REGENCY) -> Path:
    """On the server: create the issuing CA key (if missing) and write its CSR for the root.

    Returns the CSR's path. Run again, it writes a fresh CSR for the same key."""
    paths = pki_paths(keys_dir)
    with _locked(paths.keys_dir):
        return _request_locked(paths, regency)


def _request_locked(paths: PkiPaths, regency: str) -> Path:
    if paths.issuing_cert.exists():
        raise PkiError(f"{paths.issuing_cert} is already installed")
    if paths.issuing_key.exists():
        key = _load_key(paths.issuing_key)
    else:
        key = new_key()
        _write_new(paths.issuing_key, _key_pem(key), 0o600)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(regency, f"CA Penerbit Surat Desa {regency}"))
        .sign(key, hashes.SHA256())
    )
    _write_replace(paths.issuing_csr, csr.public_bytes(serialization.Encoding.PEM))
    return paths.issuing_csr


def install_issuing_ca(keys_dir: Path, certs: list[x509.Certificate]) -> PkiPaths:
    """On the server: install the root certificate and the issuing CA certificate the root
    signed (from ``suratdesa keys root sign``), then create the TSA and seal keys."""
    paths = pki_paths(keys_dir)
    with _locked(paths.keys_dir):
        _install_locked(paths, certs)
    return paths


def _install_locked(paths: PkiPaths, certs: list[x509.Certificate]) -> None:
    roots = [c for c in certs if c.subject == c.issuer and _verifies(c, c)]
    if len({r.fingerprint(hashes.SHA256()) for r in roots}) != 1:
        raise PkiError("Give exactly one root certificate (self-signed)")
    root = roots[0]
    if not _is_ca(root):
        raise PkiError("The root certificate is not a CA")
    if not paths.issuing_key.exists():
        raise PkiError(f"{paths.issuing_key} is missing: run `suratdesa keys request` first")
    key = _load_key(paths.issuing_key)
    mine = [
        c for c in certs if c.public_key().public_numbers() == key.public_key().public_numbers()
    ]
    if not mine:
        raise PkiError(f"None of the certificates is for the key in {paths.issuing_key}")
    issuing = mine[0]
    if not _verifies(issuing, root) or not _is_ca(issuing):
        raise PkiError("The issuing CA certificate is not a CA certificate signed by the root")
    if _root_keys_in(paths.keys_dir, root):
        raise PkiError(f"{paths.keys_dir} holds the root's private key: move it offline first")
    for path, cert in ((paths.root_cert, root), (paths.issuing_cert, issuing)):
        if path.exists():
            if x509.load_pem_x509_certificate(path.read_bytes()) != cert:
                raise PkiError(f"{path} already holds another certificate; not replaced")
        else:
            _write_new(path, _cert_pem(cert), 0o644)
    paths.issuing_csr.unlink(missing_ok=True)
    _ensure_service_keys(paths)


def _verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _ensure_service_keys(paths: PkiPaths) -> None:
    """The keys the server makes itself under its issuing CA: the TSA and the seal key."""
    if not _existing(paths.issuing_cert, paths.issuing_key):
        if paths.tsa_cert.exists():
            raise PkiError("The issuing CA is missing but the TSA certificate still exists")
        raise PkiError(f"{paths.issuing_cert} is missing: install the issuing CA first")
    if not paths.root_cert.exists():
        raise PkiError(f"{paths.root_cert} is missing: the server needs the root certificate")
    if not _existing(paths.tsa_cert, paths.tsa_key):
        issuing_cert, issuing_key = _load_pair(paths.issuing_cert, paths.issuing_key)
        tsa_key = new_key()
        tsa_builder = (
            certificate_builder(
                _name(
                    _regency_of(issuing_cert),
                    f"Layanan Stempel Waktu Surat Desa {_regency_of(issuing_cert)}",
                ),
                issuing_cert.subject,
                tsa_key.public_key(),
                issuing_key.public_key(),
                TSA_VALID_DAYS,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True), critical=True)
            # RFC 3161 section 2.3: the TSA certificate carries exactly this EKU, critical.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
        )
        tsa_builder = with_pointers(tsa_builder, signer_pointers(paths.keys_dir))
        tsa_cert = tsa_builder.sign(issuing_key, hashes.SHA256())
        _store(paths.tsa_cert, paths.tsa_key, tsa_cert, tsa_key)
    _ensure_seal_locked(paths)


def _ensure_seal_locked(paths: PkiPaths) -> None:
    if not paths.seal_key.exists():
        _write_new(paths.seal_key, _key_pem(ec.generate_private_key(ec.SECP256R1())), 0o600)


_PEM_KEY_BLOCK = re.compile(
    rb"-----BEGIN (?:RSA |EC )?PRIVATE KEY-----.+?-----END (?:RSA |EC )?PRIVATE KEY-----", re.S
)


def _root_keys_in(folder: Path, root: x509.Certificate) -> list[Path]:
    """Files under ``folder`` holding the root's private key (matched by public key, so a
    renamed copy is found too). Encrypted PEM keys cannot be matched and are not reported."""
    want = root.public_key().public_numbers()
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        for block in _PEM_KEY_BLOCK.findall(path.read_bytes()):
            try:
                key = serialization.load_pem_private_key(
                    block, password=None, unsafe_skip_rsa_key_validation=True
                )
            except (ValueError, TypeError):
                continue
            if key.public_key().public_numbers() == want:
                found.append(path)
                break
    return found


def init_pki(
    keys_dir: Path,
    *,
    regency: str = DEFAULT_REGENCY,
    root_dir: Path | None = None,
    public_url: str | None = None,
) -> PkiPaths:
    """Development shortcut: the whole ceremony at once, where anything is missing.

    The root key goes to ``root_dir`` (default: ``keys_dir``'s sibling ``<name>-root``), never
    into ``keys_dir``; a root key left in ``keys_dir`` by an older version is moved there.
    Once the issuing CA is installed the root key is not read again. Idempotent: existing
    keys are loaded and never overwritten. A file lock serialises concurrent callers.

    With ``public_url`` a folder that has no publication URL yet gets it before anything is
    issued, so the issuing CA, the TSA and every signer certificate point at the CRLs and the
    OCSP responder under it; the development root then also signs its CRL (renewed here when
    it nears its nextUpdate).
    """
    paths = pki_paths(keys_dir)
    rp = root_paths(root_dir if root_dir is not None else default_root_dir(paths.keys_dir))
    if _same_folder(rp.root_dir, paths.keys_dir):
        raise PkiError("The root folder must not be the server key folder or inside it")
    with _locked(paths.keys_dir):
        _move_legacy_root_key(paths, rp)
        if public_url and not paths.issuing_cert.exists():
            set_publication_url(paths.keys_dir, public_url)
        if not paths.issuing_cert.exists():
            if paths.tsa_cert.exists():
                raise PkiError("The issuing CA is missing but the TSA certificate still exists")
            if paths.root_cert.exists() and not rp.cert.exists():
                raise PkiError(
                    f"{paths.root_cert} is installed but its key is not in {rp.root_dir}"
                )
            create_root(rp.root_dir, regency=regency)
            csr = load_csr(_request_locked(paths, regency).read_bytes())
            url = publication_url(paths.keys_dir)
            issuing = sign_issuing_csr(rp.root_dir, csr, public_url=url)
            root = x509.load_pem_x509_certificate(rp.cert.read_bytes())
            _install_locked(paths, [root, issuing])
        _ensure_service_keys(paths)
        if _points_at_root_crl(load_issuing_ca(paths.keys_dir)):
            from engine.trust.pki.crl import ensure_dev_root_crl

            ensure_dev_root_crl(paths.keys_dir, rp.root_dir)
    return paths


def _points_at_root_crl(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return False
    return True


def _move_legacy_root_key(paths: PkiPaths, rp: RootPaths) -> None:
    legacy = paths.keys_dir / rp.key.name
    if not legacy.exists():
        return
    legacy_key = _load_key(legacy)
    with _locked(rp.root_dir):
        if rp.key.exists():
            if _load_key(rp.key).public_key().public_numbers() != (
                legacy_key.public_key().public_numbers()
            ):
                raise PkiError(f"{legacy} and {rp.key} are two different root keys")
            legacy.unlink()
            return
        if not rp.cert.exists():
            shutil.copyfile(paths.root_cert, rp.cert)
        shutil.move(legacy, rp.key)
        os.chmod(rp.key, 0o600)


def has_legacy_root_key(keys_dir: Path) -> bool:
    """A server folder made before the root went offline (``init_pki`` moves that key)."""
    return (Path(keys_dir) / root_paths(keys_dir).key.name).exists()


def _require(path: Path) -> Path:
    if not path.exists():
        raise PkiError(
            f"{path} is missing: run `suratdesa keys init` (development) "
            "or the key ceremony (docs/pki.md)"
        )
    return path


def load_root_ca(keys_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_require(pki_paths(keys_dir).root_cert).read_bytes())


def load_issuing_ca(keys_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_require(pki_paths(keys_dir).issuing_cert).read_bytes())


def load_issuing_ca_key(keys_dir: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    p = pki_paths(keys_dir)
    return _load_pair(_require(p.issuing_cert), _require(p.issuing_key))


def load_tsa_cert(keys_dir: Path) -> x509.Certificate:
    """The development TSA's certificate (no key read)."""
    return x509.load_pem_x509_certificate(_require(pki_paths(keys_dir).tsa_cert).read_bytes())


def load_tsa(keys_dir: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The development TSA's certificate and private key."""
    p = pki_paths(keys_dir)
    return _load_pair(_require(p.tsa_cert), _require(p.tsa_key))


def load_trust_roots(keys_dir: Path) -> list[x509.Certificate]:
    """The regency root, plus any extra anchors placed as PEM files in keys_dir/trusted/."""
    roots = [load_root_ca(keys_dir)]
    extra = Path(keys_dir) / EXTRA_ROOTS_DIR
    if extra.is_dir():
        for pem in sorted(extra.glob("*.pem")):
            roots.extend(x509.load_pem_x509_certificates(pem.read_bytes()))
    return roots
