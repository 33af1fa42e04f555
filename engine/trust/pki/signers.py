"""Signer certificates: issued by the issuing CA into a PKCS#12 (AES-256, PBKDF2 600,000
rounds, a MAC as costly to guess as the key), and the seal key."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from engine.trust.pki.ceremony import _ensure_seal_locked, load_issuing_ca_key, load_root_ca
from engine.trust.pki.certificates import (
    PkiError,
    SignerBundle,
    _locked,
    certificate_builder,
    key_usage,
    new_key,
    pki_paths,
)
from engine.trust.pki.revocation import signer_pointers, with_pointers

# Signer PKCS#12: the key (and the certificates) under PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC
# at OWASP's 600,000 iterations. The file's integrity MAC is keyed from the same passphrase
# with the PKCS#12 KDF, and cryptography writes it with 2048 iterations: a password oracle
# 300x cheaper than the key's KDF. We redo the MAC with P12_MAC_ITERATIONS; one PKCS#12 KDF
# round is one SHA-256 block where a PBKDF2-HMAC round is two, so 2 x 600,000 costs a guesser
# as much as the key's KDF (measured: both about 0.1 s here).
P12_KDF_ITERATIONS = 600_000
P12_MAC_ITERATIONS = 2 * P12_KDF_ITERATIONS


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
    key = new_key()
    builder = (
        certificate_builder(
            subject, issuing_cert.subject, key.public_key(), issuing_key.public_key(), valid_days
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # No extendedKeyUsage on purpose: its absence means "any purpose", which every PDF
        # validator accepts, while a specific document-signing OID is not understood by all.
        .add_extension(key_usage(digital_signature=True, content_commitment=True), critical=True)
    )
    # Where the CRL and the OCSP responder are (none for a folder without a publication URL).
    cert = with_pointers(builder, signer_pointers(keys_dir)).sign(issuing_key, hashes.SHA256())
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
