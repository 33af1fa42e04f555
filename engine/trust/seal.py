"""The offline seal in a letter's QR: a COSE_Sign1 (RFC 9052) signed with ES256 over the
letter's public facts and a digest of its content, base32 so the whole QR stays in alphanumeric
mode. A phone with the key list (``/pki/seal-keys.cose``) checks a paper letter without a network.

QR text: ``<PUBLIC URL, upper case>/V/<code>/<seal>``. Scheme and host are case-insensitive and
the portal answers /V/ as well as /v/, so scanning still opens the letter's page.

Seal payload v2 (CBOR array, kept small so the QR stays at version <= 15, EC M)::

    [2, code (20 bytes: the letter's verify code, base32-decoded), number, yyyymmdd,
     [[label, value], ...] (the letter type's public facts, see engine.letters.facts),
     content digest (16 bytes)]

The code in the payload binds the seal to the URL it is printed in: a genuine seal moved under
another letter's code is refused. The content digest is SHA-256 over the canonical JSON of every
field the letter states (truncated to 128 bits: a second preimage still costs 2^128 work).
Version 1 seals (``[1, number, yyyymmdd, subject name, digest]``, letters issued before the
facts existed) carry no code: only the portal accepts them, where the registry binds the
number to the code.

A seal verifies only in the one encoding we emit (:func:`make_seal`): base32 upper case without
padding, COSE_Sign1 with tag 18, canonical CBOR with nothing after it, exactly our protected
and unprotected headers, and a low-S ECDSA signature. Any other encoding of the same signed
content, which a forger could produce from a genuine seal, is refused.

Key list: COSE_Sign1 with PS256 by the issuing CA, its certificate in the x5chain header (33),
payload ``{"keys": [{"kid", "crv", "x", "y"}], "issued": ISO time}``; it chains to the root.

One verdict for a seal: :func:`seal_verdict` (a code and a seal, as the portal receives them)
and :func:`qr_verdict` (the scanned QR text, as ``suratdesa verify-qr`` receives it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from engine.errors import SuratDesaError
from engine.letters.render import LetterContent
from engine.trust import pki

ES256, PS256 = -7, -37
HDR_ALG, HDR_KID, HDR_X5CHAIN = 1, 4, 33
COSE_SIGN1_TAG = 18
SEAL_VERSION = 2
NAME_MAX = 40  # v1 seals: the subject's name
DIGEST_BYTES = 16
CODE_BYTES = 20  # a verify code is 160 random bits, 32 base32 characters
KID_BYTES = 4
# Public facts in the seal: each value at most FACT_VALUE_MAX characters, and labels plus
# values at most FACTS_BUDGET bytes of UTF-8 in all, so the QR stays at version <= 15 (EC M)
# with a 43-character public URL and a 34-character letter number.
FACT_VALUE_MAX = 40
FACTS_BUDGET = 110
ELLIPSIS = "…"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PROTECTED_ES256 = cbor2.dumps({HDR_ALG: ES256})  # exactly the protected header we emit
_B32 = re.compile(r"^[A-Z2-7]+$")
_CODE = re.compile(r"^[A-Z2-7]{32}$")


class SealError(SuratDesaError):
    """A malformed seal or key list, or a signature that does not verify (Indonesian text)."""


@dataclass(frozen=True)
class SealFields:
    number: str
    issued_on: date
    facts: tuple[tuple[str, str], ...]  # (label, value) as the seal carries them
    content_digest: bytes
    code: str | None = None  # the verify code the seal is bound to (None: a version 1 seal)
    version: int = SEAL_VERSION

    @property
    def subject_name(self) -> str:
        """The first fact's value (a v1 seal's subject name)."""
        return self.facts[0][1] if self.facts else ""


@dataclass(frozen=True)
class QrContent:
    url: str  # the page URL as scanned
    code: str
    seal: str | None


@dataclass(frozen=True)
class SealRecord:
    """What the registry holds for the letter a code names: the portal compares it with the
    seal. ``facts`` is None for letters issued before public facts were stored."""

    number: str
    issued_on: date
    facts: Sequence[Mapping[str, str]] | None
    subject_name: str


@dataclass(frozen=True)
class SealVerdict:
    """The one verdict on a letter's seal, for every face (portal page, JSON, CLI)."""

    valid: bool
    reason: str  # Bahasa Indonesia, shown to the reader
    code: str | None = None  # the code the QR or URL names
    fields: SealFields | None = None  # what the seal states (only when valid)
    no_seal: bool = False  # the QR holds only the URL: nothing to check offline


# --------------------------------------------------------------------------- making


def content_digest(fields: dict[str, Any]) -> bytes:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).digest()[:DIGEST_BYTES]


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:KID_BYTES]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)


def seal_facts(facts: Sequence[Mapping[str, str]] | Sequence[tuple[str, str]]) -> tuple:
    """The facts as the seal carries them: each value cut to FACT_VALUE_MAX characters, then
    the longest values shortened further until labels and values fit FACTS_BUDGET bytes. A cut
    value ends with "…". Deterministic: the portal recomputes it from the stored facts."""
    pairs = [
        (str(f["label"]), str(f["value"])) if isinstance(f, Mapping) else (str(f[0]), str(f[1]))
        for f in facts
    ]
    limits = [min(len(v), FACT_VALUE_MAX) for _, v in pairs]

    def cut(value: str, limit: int) -> str:
        return value if len(value) <= limit else value[: max(limit - 1, 0)].rstrip() + ELLIPSIS

    def size() -> int:
        return sum(
            len(k.encode()) + len(cut(v, n).encode())
            for (k, v), n in zip(pairs, limits, strict=True)
        )

    while size() > FACTS_BUDGET and any(n > 4 for n in limits):
        i = max(range(len(limits)), key=lambda j: (limits[j], -j))
        limits[i] -= 1
    return tuple((k, cut(v, n)) for (k, v), n in zip(pairs, limits, strict=True))


def _code_bytes(code: str) -> bytes:
    if not _CODE.match(code):
        raise ValueError(f"not a verify code: {code!r}")
    return base64.b32decode(code)


def make_seal(key: ec.EllipticCurvePrivateKey, fields: SealFields) -> str:
    if fields.code is None:
        raise ValueError("a seal is bound to its letter's verify code")
    payload = cbor2.dumps(
        [
            SEAL_VERSION,
            _code_bytes(fields.code),
            fields.number,
            int(fields.issued_on.strftime("%Y%m%d")),
            [list(pair) for pair in seal_facts(fields.facts)],
            fields.content_digest,
        ],
        canonical=True,
    )
    der = key.sign(_sig_structure(PROTECTED_ES256, payload), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    if s > P256_ORDER // 2:  # low-S: the one of the two valid signatures we emit and accept
        s = P256_ORDER - s
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    msg = [PROTECTED_ES256, {HDR_KID: key_id(key.public_key())}, payload, raw]
    return _b32(cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, msg), canonical=True))


def qr_text(public_url: str, code: str, seal: str) -> str:
    return f"{public_url.upper()}/V/{code}/{seal}"


# --------------------------------------------------------------------------- reading


def parse_qr(text: str) -> QrContent:
    """Code and seal from a QR text, leniently (for display); :func:`qr_verdict` is strict."""
    parts = text.strip().rstrip("/").split("/")
    if len(parts) < 2:
        raise SealError("Teks QR tidak dikenali")
    if parts[-2].upper() == "V":
        return QrContent(text.strip(), parts[-1].upper(), None)
    if len(parts) >= 3 and parts[-3].upper() == "V":
        return QrContent(text.strip(), parts[-2].upper(), parts[-1])
    raise SealError("Teks QR tidak dikenali")


def _strict_b32(text: str) -> bytes:
    """Base32 exactly as we emit it: upper case, no padding, no stray bits."""
    if not _B32.match(text) or len(text) % 8 in (1, 3, 6):
        raise SealError("Segel bukan base32 dalam bentuk yang kami terbitkan")
    data = base64.b32decode(text + "=" * (-len(text) % 8))
    if _b32(data) != text:
        raise SealError("Segel bukan base32 dalam bentuk yang kami terbitkan")
    return data


def _strict_cbor(data: bytes, what: str) -> Any:
    """One canonical CBOR item and nothing after it."""
    try:
        decoder = cbor2.CBORDecoder(io.BytesIO(data))
        obj = decoder.decode()
        canonical = cbor2.dumps(obj, canonical=True)
    except Exception as e:  # noqa: BLE001 - any decoding problem is a malformed seal
        raise SealError(f"{what} rusak") from e
    if canonical != data:
        raise SealError(f"{what} tidak dalam bentuk kanonik yang kami terbitkan")
    return obj


def _seal_parts(seal: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(kid, payload, r||s, signed bytes) of a seal in its canonical encoding only."""
    obj = _strict_cbor(_strict_b32(seal), "Segel")
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != COSE_SIGN1_TAG:
        raise SealError("Segel bukan COSE_Sign1 bertanda (tag 18)")
    msg = obj.value
    if not (isinstance(msg, list | tuple) and len(msg) == 4):  # (a tuple inside a tag)
        raise SealError("Segel bukan COSE_Sign1")
    protected, unprotected, payload, signature = msg
    if protected != PROTECTED_ES256:
        raise SealError("Header segel bukan yang kami terbitkan")
    if not (
        isinstance(unprotected, Mapping)
        and list(unprotected) == [HDR_KID]
        and isinstance(unprotected[HDR_KID], bytes)
        and len(unprotected[HDR_KID]) == KID_BYTES
    ):
        raise SealError("Header segel bukan yang kami terbitkan")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise SealError("Segel bukan COSE_Sign1")
    if len(signature) != 64:
        raise SealError("Tanda tangan segel rusak")
    return unprotected[HDR_KID], payload, signature, _sig_structure(protected, payload)


def _payload(payload: bytes) -> SealFields:
    items = _strict_cbor(payload, "Isi segel")
    try:
        if not isinstance(items, list | tuple) or not items or type(items[0]) is not int:
            raise ValueError
        if items[0] == SEAL_VERSION:
            _, code, number, ymd, facts, digest = items
            if not (isinstance(code, bytes) and len(code) == CODE_BYTES):
                raise ValueError
            pairs = tuple((k, v) for k, v in facts)
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
                raise ValueError
            code_text: str | None = _b32(code)
        elif items[0] == 1:
            _, number, ymd, name, digest = items
            if not isinstance(name, str):
                raise ValueError
            pairs, code_text = (("Nama", name),), None
        else:
            raise SealError("Versi segel tidak didukung")
        if not (isinstance(number, str) and type(ymd) is int and isinstance(digest, bytes)):
            raise ValueError
        if len(digest) != DIGEST_BYTES:
            raise ValueError
        issued = datetime.strptime(str(ymd), "%Y%m%d").date()
    except SealError:
        raise
    except Exception as e:  # noqa: BLE001
        raise SealError("Isi segel rusak") from e
    return SealFields(number, issued, pairs, digest, code_text, items[0])


def verify_seal(seal: str, keys: dict[bytes, ec.EllipticCurvePublicKey]) -> SealFields:
    """The seal's fields if it is in its canonical encoding and its low-S ES256 signature
    verifies under a key in ``keys`` (kid -> key). Does not check which code it belongs to:
    :func:`seal_verdict` does."""
    kid, payload, signature, signed = _seal_parts(seal)
    key = keys.get(kid)
    if key is None:
        raise SealError("Kunci segel tidak dikenal (perbarui daftar kunci)")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s <= P256_ORDER // 2):
        raise SealError("Tanda tangan segel tidak dalam bentuk yang kami terbitkan")
    try:
        key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise SealError("Tanda tangan segel tidak sah") from e
    return _payload(payload)


def seal_verdict(
    code: str,
    seal: str,
    keys: dict[bytes, ec.EllipticCurvePublicKey],
    *,
    registry: SealRecord | None = None,
) -> SealVerdict:
    """The verdict on ``seal`` printed under ``code``. With ``registry`` (the portal: the
    letter the code names) the seal must also state exactly what the registry holds; without
    it (offline) a seal that does not bind its code (version 1) cannot be trusted."""
    try:
        fields = verify_seal(seal, keys)
    except SealError as e:
        return SealVerdict(False, str(e), code)
    if fields.code is not None and fields.code != code:
        return SealVerdict(False, "Segel ini milik surat lain, bukan kode pada QR ini", code)
    if registry is None:
        if fields.code is None:
            return SealVerdict(
                False, "Segel versi lama tidak terikat pada kode surat; periksa secara daring", code
            )
        return SealVerdict(True, "Segel elektronik pada QR sah", code, fields)
    same = fields.number == registry.number and fields.issued_on == registry.issued_on
    if fields.version == 1:
        name = fields.subject_name
        same = same and name == registry.subject_name[: len(name)]
    elif registry.facts is None:
        same = False
    else:
        same = same and fields.facts == seal_facts(registry.facts)
    if not same:
        return SealVerdict(False, "Segel tidak cocok dengan surat yang tercatat di registri", code)
    return SealVerdict(True, "Segel elektronik pada QR sah dan cocok dengan registri", code, fields)


def _base_parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def qr_verdict(
    text: str, keys: dict[bytes, ec.EllipticCurvePublicKey], *, base_url: str
) -> SealVerdict:
    """The verdict on a scanned QR text, offline: it must point under ``base_url`` (the
    deployment's public URL: scheme and host compared case-insensitively, the path prefix
    exactly as configured or in the upper case we print), name a code and carry a seal that
    :func:`seal_verdict` accepts for that code."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return SealVerdict(False, "Teks QR bukan alamat surat")
    scheme, host, prefix = _base_parts(base_url)
    if (parts.scheme.lower(), parts.netloc.lower()) != (scheme, host) or not scheme:
        return SealVerdict(False, f"QR ini tidak menunjuk ke portal resmi ({base_url})")
    if (
        parts.query
        or parts.fragment
        or not (parts.path.startswith(prefix + "/") or parts.path.startswith(prefix.upper() + "/"))
    ):
        return SealVerdict(False, f"QR ini tidak menunjuk ke portal resmi ({base_url})")
    rest = parts.path[len(prefix) :].split("/")
    if len(rest) not in (3, 4) or rest[0] != "" or rest[1] not in ("V", "v"):
        return SealVerdict(False, "Teks QR bukan alamat surat")
    code = rest[2]
    if not _CODE.match(code):
        return SealVerdict(False, "Kode surat pada QR tidak sah")
    if len(rest) == 3:
        return SealVerdict(
            False, "QR ini hanya berisi alamat; periksa secara daring", code, no_seal=True
        )
    return seal_verdict(code, rest[3], keys)


# --------------------------------------------------------------------------- key list


def _decode_sign1(data: bytes) -> tuple[bytes, Mapping, bytes, bytes]:
    try:
        obj = cbor2.loads(data)
    except Exception as e:  # noqa: BLE001 - any decoding problem is a malformed key list
        raise SealError(f"Daftar kunci rusak: {e}") from e
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise SealError("Daftar kunci bukan COSE_Sign1")
        obj = obj.value
    if not (isinstance(obj, list | tuple) and len(obj) == 4):
        raise SealError("Daftar kunci bukan COSE_Sign1")
    protected, unprotected, payload, signature = obj
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
        raise SealError("Daftar kunci bukan COSE_Sign1")
    if not isinstance(unprotected, Mapping):
        raise SealError("Daftar kunci bukan COSE_Sign1")
    return protected, unprotected, payload, signature


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
    try:
        header = cbor2.loads(protected)
    except Exception as e:  # noqa: BLE001
        raise SealError("Header daftar kunci rusak") from e
    if not isinstance(header, Mapping) or header.get(HDR_ALG) != PS256:
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


def seal_for_letter(
    keys_dir: Path, code: str, content: LetterContent, facts: Sequence[Mapping[str, str]]
) -> str:
    """The seal of an issued letter: its number, date and public facts, bound to its code."""
    if content.number is None:
        raise ValueError("only a numbered letter carries a seal")
    fields = SealFields(
        number=content.number,
        issued_on=content.issued_on,
        facts=seal_facts(facts),
        content_digest=letter_content_digest(code, content),
        code=code,
    )
    return make_seal(_seal_key(str(keys_dir)), fields)
