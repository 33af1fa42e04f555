"""The regency PKI: Root CA -> issuing CA -> one certificate per signer, plus a TSA certificate.

Key choice: RSA 3072 for every key. RSA is what Adobe Reader, poppler/NSS and the Indonesian
national CA (BSrE) ecosystem verify everywhere without surprises, and 3072 bits is the NIST
SP 800-57 size for protection beyond 2030, which matters because a letter must stay verifiable
for years. A 3072-bit signature costs < 1 ms here, so the larger key does not hurt throughput.

In development the keys live unencrypted under ``keys_dir`` (private keys mode 0600); in
production the issuing CA and TSA keys belong in an HSM and the root offline.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 3072
ROOT_VALID_DAYS = 20 * 365
ISSUING_VALID_DAYS = 10 * 365
TSA_VALID_DAYS = 10 * 365
DISKOMINFO = "Dinas Komunikasi dan Informatika"
# Extra trust anchors (e.g. a national root such as BSrE's) may be dropped here as PEM files.
EXTRA_ROOTS_DIR = "trusted"


class PkiError(Exception):
    """The key directory is missing or inconsistent."""


@dataclass(frozen=True)
class PkiPaths:
    keys_dir: Path
    root_cert: Path
    root_key: Path
    issuing_cert: Path
    issuing_key: Path
    tsa_cert: Path
    tsa_key: Path
    seal_key: Path


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
        root_key=keys_dir / "root-ca.key.pem",
        issuing_cert=keys_dir / "issuing-ca.pem",
        issuing_key=keys_dir / "issuing-ca.key.pem",
        tsa_cert=keys_dir / "tsa.pem",
        tsa_key=keys_dir / "tsa.key.pem",
        seal_key=keys_dir / "seal.key.pem",
    )


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


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _builder(
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


def _key_usage(
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


def _store(cert_path: Path, key_path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey):
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, key_pem, 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(f"{key_path}: expected an RSA private key")
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


def init_pki(keys_dir: Path, *, regency: str = "Kabupaten Sukoharjo") -> PkiPaths:
    """Create the Root CA, issuing CA and TSA certificate under keys_dir where missing.

    Idempotent: existing keys are loaded and never overwritten. A file lock serialises
    concurrent callers (two app processes starting at once).
    """
    paths = pki_paths(keys_dir)
    paths.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(paths.keys_dir / ".pki.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _init_locked(paths, regency)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return paths


def _init_locked(paths: PkiPaths, regency: str) -> None:
    if _existing(paths.root_cert, paths.root_key):
        root_cert, root_key = _load_pair(paths.root_cert, paths.root_key)
    else:
        if paths.issuing_cert.exists() or paths.tsa_cert.exists():
            raise PkiError("The root CA is missing but certificates issued by it still exist")
        root_key = _new_key()
        subject = _name(regency, f"Root CA Pemerintah {regency}")
        root_cert = (
            _builder(
                subject, subject, root_key.public_key(), root_key.public_key(), ROOT_VALID_DAYS
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        _store(paths.root_cert, paths.root_key, root_cert, root_key)

    if _existing(paths.issuing_cert, paths.issuing_key):
        issuing_cert, issuing_key = _load_pair(paths.issuing_cert, paths.issuing_key)
    else:
        if paths.tsa_cert.exists():
            raise PkiError("The issuing CA is missing but the TSA certificate still exists")
        issuing_key = _new_key()
        issuing_cert = (
            _builder(
                _name(regency, f"CA Penerbit Surat Desa {regency}"),
                root_cert.subject,
                issuing_key.public_key(),
                root_key.public_key(),
                ISSUING_VALID_DAYS,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        _store(paths.issuing_cert, paths.issuing_key, issuing_cert, issuing_key)

    if not _existing(paths.tsa_cert, paths.tsa_key):
        tsa_key = _new_key()
        tsa_cert = (
            _builder(
                _name(regency, f"Layanan Stempel Waktu Surat Desa {regency}"),
                issuing_cert.subject,
                tsa_key.public_key(),
                issuing_key.public_key(),
                TSA_VALID_DAYS,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            # RFC 3161 section 2.3: the TSA certificate carries exactly this EKU, critical.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(issuing_key, hashes.SHA256())
        )
        _store(paths.tsa_cert, paths.tsa_key, tsa_cert, tsa_key)

    if not paths.seal_key.exists():
        seal = ec.generate_private_key(ec.SECP256R1())
        pem = seal.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(paths.seal_key, pem, 0o600)


def _require(path: Path) -> Path:
    if not path.exists():
        raise PkiError(f"{path} is missing: run init_pki first")
    return path


def load_root_ca(keys_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_require(pki_paths(keys_dir).root_cert).read_bytes())


def load_issuing_ca(keys_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_require(pki_paths(keys_dir).issuing_cert).read_bytes())


def load_issuing_ca_key(keys_dir: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    p = pki_paths(keys_dir)
    return _load_pair(_require(p.issuing_cert), _require(p.issuing_key))


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


def issue_signer(
    keys_dir: Path,
    *,
    username: str,
    full_name: str,
    title: str,
    village: str,
    passphrase: str,
    valid_days: int = 730,
) -> SignerBundle:
    """Issue a signing certificate for one person and wrap it with the key in a PKCS#12.

    The PKCS#12 is returned, not written: the caller stores it (in the database). Only the
    passphrase opens it, and the passphrase is never stored.
    """
    if not passphrase:
        raise ValueError("Kata sandi penandatangan tidak boleh kosong")
    issuing_cert, issuing_key = load_issuing_ca_key(keys_dir)
    root_cert = load_root_ca(keys_dir)
    org = issuing_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(org)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, village),
            x509.NameAttribute(NameOID.LOCALITY_NAME, village),
            x509.NameAttribute(NameOID.TITLE, title),
            x509.NameAttribute(NameOID.USER_ID, username),
            x509.NameAttribute(NameOID.COMMON_NAME, full_name),
        ]
    )
    key = _new_key()
    cert = (
        _builder(
            subject, issuing_cert.subject, key.public_key(), issuing_key.public_key(), valid_days
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # No extendedKeyUsage on purpose: its absence means "any purpose", which every PDF
        # validator accepts, while a specific document-signing OID is not understood by all.
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .sign(issuing_key, hashes.SHA256())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        name=username.encode(),
        key=key,
        cert=cert,
        cas=[issuing_cert, root_cert],
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return SignerBundle(
        p12=p12,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
    )


def load_seal_key(keys_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key that signs the offline seal in each letter's QR (COSE ES256).

    Created by ``init_pki`` (also for a key directory made before the seal existed)."""
    path = pki_paths(keys_dir).seal_key
    if not path.exists():
        init_pki(keys_dir)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PkiError(f"{path}: expected a P-256 private key")
    return key


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
