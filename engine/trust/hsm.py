"""Signer keys in an HSM over PKCS#11 (pyHanko's PKCS11Signer on python-pkcs11).

The head's RSA key is generated on the token, marked sensitive and non-extractable, and never
leaves it: the certificate request is signed on the token (proof of possession), the regency
issuing CA (``engine.trust.pki``) signs the certificate over the public key from that request, and
the certificate is stored on the token next to the key under the same label and CKA_ID.

``load_hsm_signer`` returns the same ``LoadedSigner`` that ``signing.sign_letter`` takes for a
PKCS#12, holding one logged-in session for one batch: use it as a context manager (or call
``close()``) so the session is logged out and closed when the batch ends. A wrong PIN raises
``signing.WrongPassphrase``, exactly like a wrong PKCS#12 passphrase.

PKCS#11 keeps the login state per process and token, not per session: while one signer for a
token is open in this process, opening a second one for the same token is refused
(``TokenBusy``) rather than silently reusing the first login without checking the PIN.

``Issuer.unlock`` opens a head's token key this way when ``users.signer_hsm_label`` is set
(``suratdesa keys issue-signer USER --hsm``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pkcs11
from asn1crypto import core
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, CertificateType, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pyhanko.sign.pkcs11 import PKCS11Signer

from engine.aio import run_sync
from engine.errors import Conflict
from engine.trust import pki
from engine.trust.signing import KeySource, LoadedSigner, SigningError, WrongPassphrase

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's SoftHSM2, for development


class TokenBusy(SigningError, Conflict):
    def __init__(self) -> None:
        super().__init__("Token HSM sedang dipakai penandatanganan lain; coba lagi sebentar lagi")


def open_session(module_path: str, token_label: str, pin: str, *, rw: bool = False):
    """A logged-in session on the token labelled ``token_label``; the caller closes it.

    Raises WrongPassphrase for a wrong PIN, TokenBusy if this process is already logged in to
    the token, SigningError for a missing token or a locked PIN."""
    try:
        token = pkcs11.lib(module_path).get_token(token_label=token_label)
    except PKCS11Error as e:  # NoSuchToken, or the module cannot be loaded
        raise SigningError(f"Token HSM '{token_label}' tidak ditemukan") from e
    try:
        return token.open(rw=rw, user_pin=pin)
    except (PinIncorrect, PinInvalid, PinLenRange) as e:
        raise WrongPassphrase() from e
    except PinLocked as e:
        raise SigningError("PIN token HSM terkunci; hubungi Diskominfo") from e
    except UserAlreadyLoggedIn as e:
        raise TokenBusy() from e


def _one(session, object_class: ObjectClass, label: str):
    found = list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))
    if len(found) != 1:
        what = "kunci" if object_class == ObjectClass.PRIVATE_KEY else "sertifikat"
        raise SigningError(f"Token HSM: {what} '{label}' ditemukan {len(found)}, harus tepat 1")
    return found[0]


def _token_public_key(private_key) -> rsa.RSAPublicKey:
    """The public half of an RSA key on the token (modulus and exponent are public attributes)."""
    n = int.from_bytes(private_key[Attribute.MODULUS], "big")
    e = int.from_bytes(private_key[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def generate_key(session, key_label: str, *, bits: int = pki.KEY_BITS) -> bytes:
    """Generate a non-extractable RSA signing key pair on the token; returns its CKA_ID.

    Needs a read-write session. Refuses a label that is already taken."""
    if list(session.get_objects({Attribute.LABEL: key_label})):
        raise SigningError(f"Label '{key_label}' sudah dipakai di token HSM")
    key_id = os.urandom(16)
    session.generate_keypair(
        KeyType.RSA,
        bits,
        id=key_id,
        label=key_label,
        store=True,
        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
        private_template={
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
        },
    )
    return key_id


def build_csr(session, key_label: str, subject: x509.Name) -> x509.CertificateSigningRequest:
    """A PKCS#10 request for the token key ``key_label``, signed on the token (SHA-256, RSA)."""
    key = _one(session, ObjectClass.PRIVATE_KEY, key_label)
    public_der = _token_public_key(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.load(subject.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(public_der),
            "attributes": [],
        }
    )
    signature = key.sign(info.dump(), mechanism=Mechanism.SHA256_RSA_PKCS)
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_rsa"},
            "signature": signature,
        }
    )
    return x509.load_der_x509_csr(request.dump())


def certify_csr(
    keys_dir: Path, csr: x509.CertificateSigningRequest, *, valid_days: int = 730
) -> x509.Certificate:
    """The issuing CA's signer certificate for ``csr`` (same profile as pki.issue_signer).

    The request must be signed by its own key; its subject is taken as given (the caller,
    Diskominfo, vouches for who the head is)."""
    if not csr.is_signature_valid:
        raise SigningError("Permintaan sertifikat tidak ditandatangani oleh kuncinya sendiri")
    public_key = csr.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
        raise SigningError("Jenis kunci penandatangan tidak didukung (harus RSA >= 2048 bit)")
    issuing_cert, issuing_key = pki.load_issuing_ca_key(keys_dir)
    builder = (
        pki.certificate_builder(
            csr.subject, issuing_cert.subject, public_key, issuing_key.public_key(), valid_days
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            pki.key_usage(digital_signature=True, content_commitment=True), critical=True
        )
    )
    # Where the CRL and the OCSP responder are, as on a PKCS#12 signer's certificate (none for
    # a folder without a publication URL).
    builder = pki.with_pointers(builder, pki.signer_pointers(keys_dir))
    return builder.sign(issuing_key, hashes.SHA256())


def store_certificate(session, key_label: str, cert: x509.Certificate) -> None:
    """Put ``cert`` on the token beside its key (same label and CKA_ID); needs a rw session."""
    key = _one(session, ObjectClass.PRIVATE_KEY, key_label)
    if _token_public_key(key).public_numbers() != cert.public_key().public_numbers():
        raise SigningError("Sertifikat bukan untuk kunci ini di token HSM")
    for old in session.get_objects(
        {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: key_label}
    ):
        old.destroy()  # a renewed certificate replaces the previous one
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.LABEL: key_label,
            Attribute.ID: key[Attribute.ID],
            Attribute.SUBJECT: cert.subject.public_bytes(),
            Attribute.ISSUER: cert.issuer.public_bytes(),
            Attribute.SERIAL_NUMBER: core.Integer(cert.serial_number).dump(),  # DER INTEGER
            Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
        }
    )


def signer_subject(
    keys_dir: Path, *, username: str, full_name: str, title: str, village: str
) -> x509.Name:
    """The subject pki.issue_signer gives a head's certificate."""
    org = (
        pki.load_issuing_ca(keys_dir)
        .subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0]
        .value
    )
    return x509.Name(
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


def enroll_hsm_signer(
    module_path: str,
    token_label: str,
    key_label: str,
    pin: str,
    *,
    keys_dir: Path,
    username: str,
    full_name: str,
    title: str,
    village: str,
    valid_days: int = 730,
    retire_label: str | None = None,
) -> x509.Certificate:
    """Generate the head's key on the token, certify it with the issuing CA, store the
    certificate on the token; returns the certificate (to record its serial and expiry). A
    renewal names the key it replaces (``retire_label``): once the new one is stored, the old
    key and certificate are destroyed, as a renewed PKCS#12 replaces the old file."""
    subject = signer_subject(
        keys_dir, username=username, full_name=full_name, title=title, village=village
    )
    session = open_session(module_path, token_label, pin, rw=True)
    try:
        generate_key(session, key_label)
        cert = certify_csr(keys_dir, build_csr(session, key_label, subject), valid_days=valid_days)
        store_certificate(session, key_label, cert)
        if retire_label is not None and retire_label != key_label:
            for obj in list(session.get_objects({Attribute.LABEL: retire_label})):
                obj.destroy()
        return cert
    finally:
        session.close()


def load_hsm_signer(
    module_path: str, token_label: str, key_label: str, pin: str, *, keys_dir: Path
) -> LoadedSigner:
    """Log in to the token and get the key ``key_label`` ready to sign one batch.

    Raises WrongPassphrase (wrong PIN), TokenBusy, SignerCertificateExpired or SigningError.
    The returned signer holds the session open: close it (``with`` or ``close()``)."""
    session = open_session(module_path, token_label, pin)
    try:
        key = _one(session, ObjectClass.PRIVATE_KEY, key_label)
        cert_obj = _one(session, ObjectClass.CERTIFICATE, key_label)
        cert = x509.load_der_x509_certificate(cert_obj[Attribute.VALUE])
        if _token_public_key(key).public_numbers() != cert.public_key().public_numbers():
            raise SigningError("Sertifikat di token HSM bukan untuk kunci penandatangan")
        issuing = pki.load_issuing_ca(keys_dir)
        try:
            cert.verify_directly_issued_by(issuing)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise SigningError(
                "Sertifikat penandatangan tidak diterbitkan oleh CA kabupaten yang berlaku"
            ) from e
        as_asn1 = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
            for c in (cert, issuing, pki.load_root_ca(keys_dir))
        ]
        signer = PKCS11Signer(
            session,
            key_label=key_label,
            key_id=key[Attribute.ID],
            signing_cert=as_asn1[0],
            ca_chain=as_asn1[1:],
            other_certs_to_pull=(),  # the chain comes from keys_dir, not the token
        )
        run_sync(signer.ensure_objects_loaded())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        loaded = LoadedSigner(
            pyhanko_signer=signer,
            cert=cert,
            common_name=str(cn[0].value) if cn else "",
            not_after=cert.not_valid_after_utc,
            on_close=session.close,
            source=KeySource(pin.encode(), hsm=(module_path, token_label, key_label)),
        )
        loaded.check_valid_now()
        return loaded
    except BaseException:
        session.close()
        raise


__all__ = [
    "DEFAULT_MODULE",
    "TokenBusy",
    "build_csr",
    "certify_csr",
    "enroll_hsm_signer",
    "generate_key",
    "load_hsm_signer",
    "open_session",
    "signer_subject",
    "store_certificate",
]
