"""The regency PKI: Root CA -> issuing CA -> one certificate per signer, plus a TSA certificate.

Key choice: RSA 3072 for every key. RSA is what Adobe Reader, poppler/NSS and the Indonesian
national CA (BSrE) ecosystem verify everywhere without surprises, and 3072 bits is the NIST
SP 800-57 size for protection beyond 2030, which matters because a letter must stay verifiable
for years. A 3072-bit signature costs < 1 ms here, so the larger key does not hurt throughput.

Two folders, never one (the ceremony is in docs/pki.md):

- the **root folder** (``root-ca.pem`` + ``root-ca.key.pem``) lives on an offline machine or USB
  stick. Only ``create_root`` and ``sign_issuing_csr`` read it: the root key signs the issuing
  CA once every few years and is needed for nothing else;
- the **server folder** (``keys_dir``, ``SURATDESA_KEYS_DIR``) holds the issuing CA, TSA and seal
  keys (private keys mode 0600) and the root *certificate* only. Everything the app does at run
  time (signer certificates, CRLs, the TSA, the seal and its key list, trust roots) needs
  nothing else.

``init_pki`` is the development shortcut: the whole ceremony at once, with the root folder next
to the server folder (``keys/dev-root/`` beside ``keys/dev/``). In production the issuing CA and
TSA keys belong in an HSM.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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

# Signer PKCS#12: the key (and the certificates) under PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC
# at OWASP's 600,000 iterations. The file's integrity MAC is keyed from the same passphrase
# with the PKCS#12 KDF, and cryptography writes it with 2048 iterations: a password oracle
# 300x cheaper than the key's KDF. We redo the MAC with P12_MAC_ITERATIONS; one PKCS#12 KDF
# round is one SHA-256 block where a PBKDF2-HMAC round is two, so 2 x 600,000 costs a guesser
# as much as the key's KDF (measured: both about 0.1 s here).
P12_KDF_ITERATIONS = 600_000
P12_MAC_ITERATIONS = 2 * P12_KDF_ITERATIONS


class PkiError(Exception):
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
        key = _new_key()
        subject = _name(regency, f"Root CA Pemerintah {regency}")
        cert = (
            _builder(subject, subject, key.public_key(), key.public_key(), ROOT_VALID_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
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
    root_dir: Path, csr: x509.CertificateSigningRequest, *, valid_days: int = ISSUING_VALID_DAYS
) -> x509.Certificate:
    """The root (offline) certifies the server's issuing CA key from its CSR.

    Only the subject and the key are taken from the request; what the certificate may do
    (a CA below the root, no further CAs below it) is decided here."""
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
    return (
        _builder(csr.subject, root_cert.subject, csr.public_key(), root_key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )


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
        key = _new_key()
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
        tsa_key = _new_key()
        tsa_cert = (
            _builder(
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
            .add_extension(_key_usage(digital_signature=True), critical=True)
            # RFC 3161 section 2.3: the TSA certificate carries exactly this EKU, critical.
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(issuing_key, hashes.SHA256())
        )
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
    keys_dir: Path, *, regency: str = DEFAULT_REGENCY, root_dir: Path | None = None
) -> PkiPaths:
    """Development shortcut: the whole ceremony at once, where anything is missing.

    The root key goes to ``root_dir`` (default: ``keys_dir``'s sibling ``<name>-root``), never
    into ``keys_dir``; a root key left in ``keys_dir`` by an older version is moved there.
    Once the issuing CA is installed the root key is not read again. Idempotent: existing
    keys are loaded and never overwritten. A file lock serialises concurrent callers.
    """
    paths = pki_paths(keys_dir)
    rp = root_paths(root_dir if root_dir is not None else default_root_dir(paths.keys_dir))
    if _same_folder(rp.root_dir, paths.keys_dir):
        raise PkiError("The root folder must not be the server key folder or inside it")
    with _locked(paths.keys_dir):
        _move_legacy_root_key(paths, rp)
        if not paths.issuing_cert.exists():
            if paths.tsa_cert.exists():
                raise PkiError("The issuing CA is missing but the TSA certificate still exists")
            if paths.root_cert.exists() and not rp.cert.exists():
                raise PkiError(
                    f"{paths.root_cert} is installed but its key is not in {rp.root_dir}"
                )
            create_root(rp.root_dir, regency=regency)
            csr = load_csr(_request_locked(paths, regency).read_bytes())
            issuing = sign_issuing_csr(rp.root_dir, csr)
            root = x509.load_pem_x509_certificate(rp.cert.read_bytes())
            _install_locked(paths, [root, issuing])
        _ensure_service_keys(paths)
    return paths


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


# --- signer PKCS#12 --------------------------------------------------------------------------


def _p12_mac_key(passphrase: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 7292 appendix B.2 key derivation, ID 3 (MAC key), SHA-256 (u = 32, v = 64).

    The password is the BMPString of the passphrase plus two zero bytes (what OpenSSL and
    cryptography use); ``_strengthen_mac`` checks this against cryptography's own MAC first."""
    v = 64

    def fill(data: bytes) -> bytes:
        if not data:
            return b""
        size = v * -(-len(data) // v)
        return (data * (size // len(data) + 1))[:size]

    password = passphrase.decode("utf-8").encode("utf-16-be") + b"\0\0"
    digest = hashlib.sha256(bytes([3]) * v + fill(salt) + fill(password)).digest()
    sha256 = hashlib.sha256
    for _ in range(iterations - 1):
        digest = sha256(digest).digest()
    return digest


def _strengthen_mac(p12: bytes, passphrase: bytes) -> bytes:
    """Replace the PKCS#12's MAC (2048 rounds) by one with P12_MAC_ITERATIONS rounds."""
    pfx = asn1_pkcs12.Pfx.load(p12)
    mac_data = pfx["mac_data"]
    content = pfx["auth_safe"]["content"].native
    if mac_data["mac"]["digest_algorithm"]["algorithm"].native != "sha256":
        raise PkiError("Unexpected PKCS#12 MAC algorithm")
    # Known answer first: our KDF must reproduce the MAC cryptography (Rust) just wrote.
    key = _p12_mac_key(passphrase, mac_data["mac_salt"].native, mac_data["iterations"].native)
    expected = mac_data["mac"]["digest"].native
    if not hmac.compare_digest(hmac.new(key, content, hashlib.sha256).digest(), expected):
        raise PkiError("PKCS#12 MAC key derivation self-check failed")
    salt = os.urandom(16)
    key = _p12_mac_key(passphrase, salt, P12_MAC_ITERATIONS)
    return asn1_pkcs12.Pfx(
        {
            "version": pfx["version"].native,
            "auth_safe": pfx["auth_safe"],
            "mac_data": {
                "mac": {
                    "digest_algorithm": {"algorithm": "sha256"},
                    "digest": hmac.new(key, content, hashlib.sha256).digest(),
                },
                "mac_salt": salt,
                "iterations": P12_MAC_ITERATIONS,
            },
        }
    ).dump()


def signer_pkcs12(
    name: str,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    cas: list[x509.Certificate],
    passphrase: str,
) -> bytes:
    """Key and chain in a PKCS#12 under PBES2 (PBKDF2-HMAC-SHA256, P12_KDF_ITERATIONS, AES-256-CBC)
    with an HMAC-SHA256 integrity MAC of P12_MAC_ITERATIONS rounds. Older bundles (20,000
    rounds) still load: the parameters travel inside the file."""
    secret = passphrase.encode()
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(P12_KDF_ITERATIONS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(secret)
    )
    p12 = pkcs12.serialize_key_and_certificates(
        name=name.encode(), key=key, cert=cert, cas=cas, encryption_algorithm=encryption
    )
    return _strengthen_mac(p12, secret)


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
    p12 = signer_pkcs12(username, key, cert, [issuing_cert, root_cert], passphrase)
    return SignerBundle(
        p12=p12,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        not_after=cert.not_valid_after_utc,
        serial=cert.serial_number,
    )


def load_seal_key(keys_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key that signs the offline seal in each letter's QR (COSE ES256).

    Created here if missing (a server folder made before the seal existed); no root needed."""
    paths = pki_paths(keys_dir)
    if not paths.seal_key.exists():
        with _locked(paths.keys_dir):
            _ensure_seal_locked(paths)
    key = serialization.load_pem_private_key(paths.seal_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PkiError(f"{paths.seal_key}: expected a P-256 private key")
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
