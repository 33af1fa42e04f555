"""Letter CMS signatures and development timestamp tokens from DER parts prepared once per batch.

pyHanko builds each CMS SignedData as a tree of asn1crypto objects and serialises it again for
every signature, certificates included; that serialisation was most of a letter's signing time.
A letter's signature differs from the last one in only four values: the document digest, the
signature, the timestamp token, and (inside the token) its time, serial, nonce and digest.
So the first signature of a batch is made by pyHanko itself (same signer, same attribute
settings), its DER is cut into the parts that never change (version, algorithms, certificate
set, signer identifier, every signed attribute but the message digest), and each letter's CMS
is those bytes with its own values put back in the same places, in the same order. The
development TSA does the same for its tokens. Nothing is left out or added: a verifier sees the
structure pyHanko would have produced (tests/test_signing.py, test_verification.py).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

MD = "sha256"


def der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


SEQUENCE, SET, OCTET_STRING = 0x30, 0x31, 0x04
CONTEXT_0, CONTEXT_1 = 0xA0, 0xA1  # [0] / [1], constructed
_SIGNED_DATA_OID = cms.ContentType("signed_data").dump()
_TST_INFO_OID = cms.ContentType("tst_info").dump()


def der_set_content(elements: list[bytes]) -> bytes:
    """A SET OF's content in DER order (sorted by encoding), as asn1crypto writes it."""
    return b"".join(sorted(elements))


def sign_with(key: object, data: bytes) -> bytes:
    """An RSA PKCS#1 v1.5 or ECDSA signature over SHA-256, as pyHanko's signers make them."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise TypeError(f"unsupported key type {type(key).__name__}")


def signature_algorithm(key: object) -> bytes:
    name = "rsassa_pkcs1v15" if isinstance(key, rsa.RSAPrivateKey) else "sha256_ecdsa"
    return algos.SignedDigestAlgorithm({"algorithm": name}).dump()


def _attribute(name: str, value: object) -> bytes:
    return cms.CMSAttribute({"type": name, "values": (value,)}).dump()


@dataclass(frozen=True)
class SignatureTemplate:
    """The constant DER parts of one signer's PAdES CMS, cut from a signature pyHanko made."""

    head: bytes  # SignedData version + digestAlgorithms + encapContentInfo + certificates
    signer_head: bytes  # SignerInfo version + sid + digestAlgorithm
    attrs: tuple[bytes, ...]  # every signed attribute but the message digest, DER
    signature_algorithm: bytes

    @classmethod
    def from_cms(cls, content_info: cms.ContentInfo) -> SignatureTemplate:
        signed_data = content_info["content"]
        if len(signed_data["signer_infos"]) != 1:
            raise ValueError("expected one SignerInfo")
        info = signed_data["signer_infos"][0]
        if info["unsigned_attrs"].native:
            raise ValueError("make the template without unsigned attributes")
        attrs = list(info["signed_attrs"])
        if [a["type"].native for a in attrs].count("message_digest") != 1:
            raise ValueError("expected one message-digest attribute")
        return cls(
            head=b"".join(
                signed_data[f].dump()
                for f in ("version", "digest_algorithms", "encap_content_info", "certificates")
            ),
            signer_head=b"".join(info[f].dump() for f in ("version", "sid", "digest_algorithm")),
            attrs=tuple(a.dump() for a in attrs if a["type"].native != "message_digest"),
            signature_algorithm=info["signature_algorithm"].dump(),
        )

    def signed_attributes(self, document_digest: bytes) -> bytes:
        """The content of the signed-attributes SET for ``document_digest``."""
        return der_set_content([*self.attrs, _attribute("message_digest", document_digest)])

    def content_info(self, signed_attrs: bytes, signature: bytes, token: bytes | None) -> bytes:
        unsigned = b""
        if token is not None:
            attr = tlv(SEQUENCE, _TIMESTAMP_ATTR_OID + tlv(SET, token))
            unsigned = tlv(CONTEXT_1, attr)
        signer_info = tlv(
            SEQUENCE,
            self.signer_head
            + tlv(CONTEXT_0, signed_attrs)
            + self.signature_algorithm
            + tlv(OCTET_STRING, signature)
            + unsigned,
        )
        signed_data = tlv(SEQUENCE, self.head + tlv(SET, signer_info))
        return tlv(SEQUENCE, _SIGNED_DATA_OID + tlv(CONTEXT_0, signed_data))


_TIMESTAMP_ATTR_OID = cms.CMSAttributeType("signature_time_stamp_token").dump()


@dataclass(frozen=True)
class TokenTemplate:
    """The constant DER parts of the development TSA's RFC 3161 tokens."""

    tst_version: bytes
    policy: bytes
    hash_algorithm: bytes
    tsa_name: bytes  # [0] GeneralName, as pyHanko's DummyTimeStamper writes it
    head: bytes  # SignedData version + digestAlgorithms
    certificates: bytes
    signer_head: bytes
    content_type_attr: bytes
    signing_certificate_attr: bytes
    signature_algorithm: bytes

    @classmethod
    def from_token(cls, token: cms.ContentInfo, key: object) -> TokenTemplate:
        signed_data = token["content"]
        tst_info = signed_data["encap_content_info"]["content"].parsed
        info = signed_data["signer_infos"][0]
        attrs = {a["type"].native: a.dump() for a in info["signed_attrs"]}
        return cls(
            tst_version=tst_info["version"].dump(),
            policy=tst_info["policy"].dump(),
            hash_algorithm=tst_info["message_imprint"]["hash_algorithm"].dump(),
            tsa_name=tst_info["tsa"].dump(),
            head=signed_data["version"].dump() + signed_data["digest_algorithms"].dump(),
            certificates=signed_data["certificates"].dump(),
            signer_head=b"".join(info[f].dump() for f in ("version", "sid", "digest_algorithm")),
            content_type_attr=attrs["content_type"],
            signing_certificate_attr=attrs["signing_certificate"],
            signature_algorithm=signature_algorithm(key),
        )

    def token(self, key: object, message_digest: bytes, when: datetime | None = None) -> bytes:
        """A timestamp token (ContentInfo DER) over ``message_digest`` (SHA-256)."""
        when = (when or datetime.now(UTC)).replace(microsecond=0)
        serial = struct.unpack(">q", b"\x01" + os.urandom(7))[0]
        nonce = struct.unpack(">q", b"\x01" + os.urandom(7))[0]
        imprint = tlv(SEQUENCE, self.hash_algorithm + tlv(OCTET_STRING, message_digest))
        tst_info = tlv(
            SEQUENCE,
            self.tst_version
            + self.policy
            + imprint
            + core.Integer(serial).dump()
            + core.GeneralizedTime(when).dump()
            + core.Integer(nonce).dump()
            + self.tsa_name,
        )
        attrs = der_set_content(
            [
                self.content_type_attr,
                _attribute("signing_time", cms.Time({"utc_time": core.UTCTime(when)})),
                self.signing_certificate_attr,
                _attribute("message_digest", hashlib.sha256(tst_info).digest()),
            ]
        )
        signature = sign_with(key, tlv(SET, attrs))
        signer_info = tlv(
            SEQUENCE,
            self.signer_head
            + tlv(CONTEXT_0, attrs)
            + self.signature_algorithm
            + tlv(OCTET_STRING, signature),
        )
        encap = tlv(SEQUENCE, _TST_INFO_OID + tlv(CONTEXT_0, tlv(OCTET_STRING, tst_info)))
        signed_data = tlv(SEQUENCE, self.head + encap + self.certificates + tlv(SET, signer_info))
        return tlv(SEQUENCE, _SIGNED_DATA_OID + tlv(CONTEXT_0, signed_data))


def parse_token(der: bytes) -> cms.ContentInfo:
    return cms.ContentInfo.load(der)


__all__ = [
    "SignatureTemplate",
    "TokenTemplate",
    "asn1_x509",
    "parse_token",
    "sign_with",
    "tlv",
    "tsp",
]
