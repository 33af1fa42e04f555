"""The offline seal in a letter's QR: a COSE_Sign1 (RFC 9052) signed with ES256 over the
letter's key fields and a digest of its content, base32 so the whole QR stays in alphanumeric
mode. A phone with the key list (``/pki/keys.cose``) checks a paper letter without a network.

QR text: ``<PUBLIC URL, upper case>/V/<code>/<seal>``. Scheme and host are case-insensitive and
the portal answers /V/ as well as /v/, so scanning still opens the letter's page.

Seal payload (CBOR array, kept small so the QR stays at version <= 15, EC M):
``[1, number, yyyymmdd, subject name (<= 40 chars), content digest (16 bytes)]``; the content
digest is SHA-256 over the canonical JSON of every field the letter states (truncated to 128
bits: a second preimage still costs 2^128 work).

Key list: COSE_Sign1 with PS256 by the issuing CA, its certificate in the x5chain header (33),
payload ``{"keys": [{"kid", "crv", "x", "y"}], "issued": ISO time}``; it chains to the root.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from engine import pki
from engine.render import LetterContent

ES256, PS256 = -7, -37
HDR_ALG, HDR_KID, HDR_X5CHAIN = 1, 4, 33
COSE_SIGN1_TAG = 18
NAME_MAX = 40
DIGEST_BYTES = 16


class SealError(Exception):
    """A malformed seal or key list, or a signature that does not verify (Indonesian text)."""


@dataclass(frozen=True)
class SealFields:
    number: str
    issued_on: date
    subject_name: str
    content_digest: bytes


@dataclass(frozen=True)
class QrContent:
    url: str  # the page URL as scanned
    code: str
    seal: str | None


def content_digest(fields: dict[str, Any]) -> bytes:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).digest()[:DIGEST_BYTES]


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:4]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _unb32(text: str) -> bytes:
    text = text.strip().upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def make_seal(key: ec.EllipticCurvePrivateKey, fields: SealFields) -> str:
    payload = cbor2.dumps(
        [
            1,
            fields.number,
            int(fields.issued_on.strftime("%Y%m%d")),
            fields.subject_name[:NAME_MAX],
            fields.content_digest,
        ]
    )
    protected = cbor2.dumps({HDR_ALG: ES256})
    der = key.sign(_sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    msg = [protected, {HDR_KID: key_id(key.public_key())}, payload, raw]
    return _b32(cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, msg)))


def qr_text(public_url: str, code: str, seal: str) -> str:
    return f"{public_url.upper()}/V/{code}/{seal}"


def parse_qr(text: str) -> QrContent:
    parts = text.strip().rstrip("/").split("/")
    if len(parts) < 2:
        raise SealError("Teks QR tidak dikenali")
    if parts[-2].upper() == "V":
        return QrContent(text.strip(), parts[-1].upper(), None)
    if len(parts) >= 3 and parts[-3].upper() == "V":
        return QrContent(text.strip(), parts[-2].upper(), parts[-1].upper())
    raise SealError("Teks QR tidak dikenali")


def _decode_sign1(data: bytes) -> tuple[bytes, Mapping, bytes, bytes]:
    try:
        obj = cbor2.loads(data)
    except Exception as e:  # noqa: BLE001 - any decoding problem is a malformed seal
        raise SealError(f"Segel rusak: {e}") from e
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise SealError("Segel bukan COSE_Sign1")
        obj = obj.value
    if not (isinstance(obj, list | tuple) and len(obj) == 4):
        raise SealError("Segel bukan COSE_Sign1")
    protected, unprotected, payload, signature = obj
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
        raise SealError("Segel bukan COSE_Sign1")
    if not isinstance(unprotected, Mapping):
        raise SealError("Segel bukan COSE_Sign1")
    return protected, unprotected, payload, signature


def verify_seal(seal: str, keys: dict[bytes, ec.EllipticCurvePublicKey]) -> SealFields:
    """The seal's fields if its ES256 signature verifies under a key in ``keys`` (kid -> key)."""
    try:
        data = _unb32(seal)
    except Exception as e:  # noqa: BLE001
        raise SealError("Segel bukan base32") from e
    protected, unprotected, payload, signature = _decode_sign1(data)
    try:
        header = cbor2.loads(protected)
    except Exception as e:  # noqa: BLE001
        raise SealError("Header segel rusak") from e
    if not isinstance(header, Mapping) or header.get(HDR_ALG) != ES256:
        raise SealError("Algoritma segel tidak didukung")
    kid = unprotected.get(HDR_KID)
    key = keys.get(kid) if isinstance(kid, bytes) else None
    if key is None:
        raise SealError("Kunci segel tidak dikenal (perbarui daftar kunci)")
    if len(signature) != 64:
        raise SealError("Tanda tangan segel rusak")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, _sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise SealError("Tanda tangan segel tidak sah") from e
    try:
        version, number, ymd, name, digest = cbor2.loads(payload)
        issued = datetime.strptime(str(ymd), "%Y%m%d").date()
    except Exception as e:  # noqa: BLE001
        raise SealError("Isi segel rusak") from e
    if version != 1:
        raise SealError("Versi segel tidak didukung")
    return SealFields(str(number), issued, str(name), bytes(digest))


# --- key list -----------------------------------------------------------------------------


def build_key_list(keys_dir: Path, *, now: datetime | None = None) -> bytes:
    issuing_cert, issuing_key = pki.load_issuing_ca_key(keys_dir)
    pub = pki.load_seal_key(keys_dir).public_key().public_numbers()
    entry = {
        "kid": key_id(pki.load_seal_key(keys_dir).public_key()),
        "crv": "P-256",
        "x": pub.x.to_bytes(32, "big"),
        "y": pub.y.to_bytes(32, "big"),
    }
    issued = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    payload = cbor2.dumps({"keys": [entry], "issued": issued})
    protected = cbor2.dumps({HDR_ALG: PS256})
    signature = issuing_key.sign(
        _sig_structure(protected, payload),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    der = issuing_cert.public_bytes(serialization.Encoding.DER)
    msg = [protected, {HDR_X5CHAIN: der}, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, msg))


def load_key_list(
    data: bytes, roots: list[x509.Certificate]
) -> dict[bytes, ec.EllipticCurvePublicKey]:
    """Check the key list's signature and that its signer chains to one of ``roots``."""
    protected, unprotected, payload, signature = _decode_sign1(data)
    if cbor2.loads(protected).get(HDR_ALG) != PS256:
        raise SealError("Algoritma daftar kunci tidak didukung")
    chain = unprotected.get(HDR_X5CHAIN)
    if not isinstance(chain, bytes):
        raise SealError("Daftar kunci tanpa sertifikat penandatangan")
    signer = x509.load_der_x509_certificate(chain)
    if not any(_issued_by(signer, root) for root in roots):
        raise SealError("Daftar kunci tidak diterbitkan oleh otoritas yang dipercaya")
    public = signer.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise SealError("Kunci penandatangan daftar kunci tidak didukung")
    try:
        public.verify(
            signature,
            _sig_structure(protected, payload),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    except InvalidSignature as e:
        raise SealError("Tanda tangan daftar kunci tidak sah") from e
    keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
    for entry in cbor2.loads(payload)["keys"]:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(entry["x"], "big"), int.from_bytes(entry["y"], "big"), ec.SECP256R1()
        ).public_key()
        if key_id(key) != entry["kid"]:
            raise SealError("Daftar kunci tidak konsisten")
        keys[entry["kid"]] = key
    return keys


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    now = datetime.now(UTC)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def local_keys(keys_dir: Path) -> dict[bytes, ec.EllipticCurvePublicKey]:
    public = pki.load_seal_key(keys_dir).public_key()
    return {key_id(public): public}


@lru_cache(maxsize=4)
def _seal_key(keys_dir: str) -> ec.EllipticCurvePrivateKey:
    return pki.load_seal_key(Path(keys_dir))


def letter_content_digest(code: str, content: LetterContent) -> bytes:
    """Digest of everything the letter states (and its code), in a canonical form."""
    return content_digest(
        {
            "code": code,
            "title": content.title,
            "number": content.number,
            "village": content.village.code,
            "issued_on": content.issued_on.isoformat(),
            "signer": [content.signer.name, list(content.signer.title_lines)],
            "subjects": {r: [p.name, p.nik] for r, p in content.subjects.items()},
            "fields": {k: str(v) for k, v in content.fields.items()},
        }
    )


def seal_for_letter(keys_dir: Path, code: str, content: LetterContent) -> str:
    if content.number is None:
        raise ValueError("only a numbered letter carries a seal")
    main = next(iter(content.subjects.values()))
    fields = SealFields(
        number=content.number,
        issued_on=content.issued_on,
        subject_name=main.name,
        content_digest=letter_content_digest(code, content),
    )
    return make_seal(_seal_key(str(keys_dir)), fields)
