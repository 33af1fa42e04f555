"""The building blocks of the regency PKI: where its files live, names, keys, certificate
builders, fingerprints, and files written safely under a folder lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from engine.errors import SuratDesaError

KEY_BITS = 3072
ROOT_VALID_DAYS = 20 * 365
ISSUING_VALID_DAYS = 10 * 365
TSA_VALID_DAYS = 10 * 365
DISKOMINFO = "Dinas Komunikasi dan Informatika"
DEFAULT_REGENCY = "Kabupaten Sukoharjo"
# Extra trust anchors (e.g. a national root such as BSrE's) may be dropped here as PEM files.
EXTRA_ROOTS_DIR = "trusted"
# The development root folder is the server folder's sibling with this suffix: keys/dev-root.
ROOT_DIR_SUFFIX = "-root"


class PkiError(SuratDesaError):
    """The key directory is missing or inconsistent."""


@dataclass(frozen=True)
class PkiPaths:
    """The server folder. No root private key here, ever."""

    keys_dir: Path
    root_cert: Path
    issuing_cert: Path
    issuing_key: Path
    issuing_csr: Path
    tsa_cert: Path
    tsa_key: Path
    seal_key: Path


@dataclass(frozen=True)
class RootPaths:
    """The offline root folder."""

    root_dir: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class SignerBundle:
    p12: bytes  # PKCS#12 encrypted with the signer's passphrase: key, cert, issuing CA + root
    cert_pem: bytes
    not_after: datetime
    serial: int


def pki_paths(keys_dir: Path) -> PkiPaths:
    keys_dir = Path(keys_dir)
    return PkiPaths(
        keys_dir=keys_dir,
        root_cert=keys_dir / "root-ca.pem",
        issuing_cert=keys_dir / "issuing-ca.pem",
        issuing_key=keys_dir / "issuing-ca.key.pem",
        issuing_csr=keys_dir / "issuing-ca.csr.pem",
        tsa_cert=keys_dir / "tsa.pem",
        tsa_key=keys_dir / "tsa.key.pem",
        seal_key=keys_dir / "seal.key.pem",
    )


def root_paths(root_dir: Path) -> RootPaths:
    root_dir = Path(root_dir)
    return RootPaths(
        root_dir=root_dir, cert=root_dir / "root-ca.pem", key=root_dir / "root-ca.key.pem"
    )


def default_root_dir(keys_dir: Path) -> Path:
    """Where the development shortcut keeps the root: keys/dev -> keys/dev-root."""
    keys_dir = Path(keys_dir)
    return keys_dir.parent / f"{keys_dir.name}{ROOT_DIR_SUFFIX}"


def fingerprint(cert_or_key: x509.Certificate | rsa.RSAPublicKey) -> str:
    """SHA-256 of a certificate, or of a public key's SubjectPublicKeyInfo, as AA:BB:...:
    read aloud and compared between the server and the offline machine during the ceremony."""
    if isinstance(cert_or_key, x509.Certificate):
        digest = cert_or_key.fingerprint(hashes.SHA256())
    else:
        der = cert_or_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(der).digest()
    return ":".join(f"{b:02X}" for b in digest)


def _name(regency: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Jawa Tengah"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Pemerintah {regency}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DISKOMINFO),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _organization(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(attrs[0].value) if attrs else ""


def _regency_of(cert: x509.Certificate) -> str:
    return _organization(cert.subject).removeprefix("Pemerintah ") or DEFAULT_REGENCY


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer_public_key: rsa.RSAPublicKey,
    valid_days: int,
) -> x509.CertificateBuilder:
    # Backdate a little so a verifier with a slightly slow clock still accepts a fresh cert.
    now = datetime.now(UTC) - timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )


def key_usage(
    *, digital_signature: bool = False, content_commitment: bool = False, ca: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (never overwrite key material)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # os.open's mode is filtered by the umask; make it exact


def _write_replace(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a public file (a CSR) atomically, replacing an older one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, data, mode)
    os.replace(tmp, path)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _store(cert_path: Path, key_path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey):
    _write_new(key_path, _key_pem(key), 0o600)
    _write_new(cert_path, _cert_pem(cert), 0o644)


def _load_key(key_path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(f"{key_path}: expected an RSA private key")
    return key


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = _load_key(key_path)
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise PkiError(f"{key_path} does not belong to {cert_path}")
    return cert, key


def _existing(cert_path: Path, key_path: Path) -> bool:
    has_cert, has_key = cert_path.exists(), key_path.exists()
    if has_cert != has_key:
        # Regenerating only one half would silently orphan the other: refuse instead.
        raise PkiError(
            f"Only one of {cert_path.name} / {key_path.name} exists in {cert_path.parent}"
        )
    return has_cert


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive file lock on a key folder: two app processes starting at once, or a CLI
    command next to a running app, never both create the same key."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / ".pki.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _same_folder(a: Path, b: Path) -> bool:
    a, b = Path(a).resolve(), Path(b).resolve()
    return a == b or a in b.parents or b in a.parents
