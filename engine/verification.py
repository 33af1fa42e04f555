"""The offline verdict on an uploaded letter (DESIGN.md, "Trust").

VALID only if every check below passes; the first failing checks are listed, in Indonesian, in
``Verdict.reasons``. Nothing here touches the network: trust comes from the given roots, and
whether a letter was withdrawn comes from the registry, not from certificate revocation data
(the regency PKI publishes none yet, so revocation is reported as "not checked").
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    SignatureCoverageLevel,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

VALID, INVALID, REVOKED, UNKNOWN = "VALID", "INVALID", "REVOKED", "UNKNOWN"

# Check revocation data only where a certificate declares a source, never fetch, and do not
# fail for its absence. Our certificates declare none, so in practice nothing is checked.
_REVINFO_POLICY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
    )
)
# PDF white-space characters except NUL (ISO 32000-1, 7.2.2); NUL padding is not a harmless
# line ending, so it counts as appended data.
_TRAILING_OK = re.compile(rb"[ \t\r\n\f]*\Z")
REVOCATION_NOT_CHECKED = "tidak diperiksa (tidak ada data pencabutan sertifikat)"


@dataclass(frozen=True)
class RegistryEntry:
    status: str  # "active" | "revoked"
    number: str
    verify_code: str


@dataclass(frozen=True)
class SignatureDetail:
    field_name: str
    kind: str  # "signature" | "document_timestamp"
    signer_cn: str | None
    issuer: str | None
    signing_time: datetime | None  # as claimed by the signer (not proof)
    timestamp_time: datetime | None  # from the RFC 3161 token (proof of existence)
    tsa_name: str | None
    timestamp_trusted: bool | None
    coverage: str | None
    modification_level: str | None
    docmdp_level: str | None
    intact: bool
    trusted: bool
    bottom_line: bool
    revocation: str = REVOCATION_NOT_CHECKED


@dataclass
class Verdict:
    valid: bool
    status: str  # VALID | INVALID | REVOKED | UNKNOWN
    reasons: list[str]
    signatures: list[SignatureDetail] = field(default_factory=list)
    signed_revision_sha256: str | None = None
    registry: RegistryEntry | None = None
    revocation_checked: bool = False


TrustRoot = x509.Certificate | asn1_x509.Certificate | bytes


def to_asn1_cert(cert: TrustRoot) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    if isinstance(cert, x509.Certificate):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    if asn1_pem.detect(cert):
        _, _, cert = asn1_pem.unarmor(cert)
    return asn1_x509.Certificate.load(cert)


def _cn(name: asn1_x509.Name) -> str:
    return str(name.native.get("common_name") or name.human_friendly)


def _context(roots: list[asn1_x509.Certificate], moment: datetime | None) -> ValidationContext:
    return ValidationContext(
        trust_roots=roots,
        allow_fetching=False,
        revinfo_policy=_REVINFO_POLICY,
        moment=moment,
    )


def _invalid(reasons: list[str], **kw: Any) -> Verdict:
    return Verdict(valid=False, status=INVALID, reasons=reasons, **kw)


def _detail(emb: EmbeddedPdfSignature, status: Any, kind: str) -> SignatureDetail:
    cert = status.signing_cert
    ts = getattr(status, "timestamp_validity", None)
    if kind == "document_timestamp":
        ts_time, tsa, ts_trusted = status.timestamp, _cn(cert.subject), status.trusted
    elif ts is not None:
        ts_time, tsa, ts_trusted = ts.timestamp, _cn(ts.signing_cert.subject), ts.trusted
    else:
        ts_time = tsa = ts_trusted = None
    mod = status.modification_level
    docmdp = emb.docmdp_level
    return SignatureDetail(
        field_name=str(emb.field_name),
        kind=kind,
        signer_cn=_cn(cert.subject),
        issuer=_cn(cert.issuer),
        signing_time=getattr(status, "signer_reported_dt", None),
        timestamp_time=ts_time,
        tsa_name=tsa,
        timestamp_trusted=ts_trusted,
        coverage=status.coverage.name if status.coverage is not None else None,
        modification_level=mod.name if mod is not None else None,
        docmdp_level=docmdp.name if docmdp is not None else None,
        intact=bool(status.intact and status.valid),
        trusted=bool(status.trusted),
        bottom_line=bool(getattr(status, "bottom_line", status.trusted)),
    )


async def _validate_certification(
    emb: EmbeddedPdfSignature, roots: list[asn1_x509.Certificate], at: datetime | None
) -> PdfSignatureStatus:
    status = await async_validate_pdf_signature(
        emb,
        signer_validation_context=_context(roots, at),
        ts_validation_context=_context(roots, at),
    )
    ts = status.timestamp_validity
    cert = status.signing_cert
    if (
        not status.trusted
        and status.intact
        and status.valid
        and ts is not None
        and ts.trusted
        and ts.intact
        and ts.valid
        and (at or datetime.now(ts.timestamp.tzinfo))
        > cert["tbs_certificate"]["validity"]["not_after"].native
    ):
        # The signer's certificate has expired since. The trusted RFC 3161 token proves the
        # signature existed at ts.timestamp, so judge the signer's chain at that moment
        # (the timestamp itself is still judged at the present time).
        status = await async_validate_pdf_signature(
            emb,
            signer_validation_context=_context(roots, ts.timestamp),
            ts_validation_context=_context(roots, at),
        )
    return status


def _signed_revision(pdf: bytes, emb: EmbeddedPdfSignature) -> bytes:
    start2, len2 = int(emb.byte_range[2]), int(emb.byte_range[3])
    return pdf[: start2 + len2]


@dataclass(frozen=True)
class _CryptoOk:
    details: list[SignatureDetail]
    signed_hash: str


async def _verify_crypto(
    pdf: bytes, roots: list[asn1_x509.Certificate], at: datetime | None
) -> Verdict | _CryptoOk:
    reasons: list[str] = []
    eof = pdf.rfind(b"%%EOF")
    if eof < 0:
        return _invalid(["Berkas bukan PDF yang utuh (penanda akhir %%EOF tidak ada)"])
    if not _TRAILING_OK.match(pdf, eof + 5):
        reasons.append("Ada data tambahan setelah akhir berkas PDF")

    reader = PdfFileReader(BytesIO(pdf), strict=True)
    sigs = sorted(reader.embedded_signatures, key=lambda e: e.signed_revision)
    if not sigs:
        return _invalid(["Berkas tidak memiliki tanda tangan elektronik"])

    first = sigs[0]
    if first.sig_object_type != "/Sig":
        return _invalid(["Tanda tangan pertama bukan tanda tangan penerbit surat"])
    signed_hash = hashlib.sha256(_signed_revision(pdf, first)).hexdigest()

    try:
        perms_ref = reader.root["/Perms"].raw_get("/DocMDP")
        is_certification = perms_ref.reference == first.sig_field.raw_get("/V").reference
    except (KeyError, AttributeError):
        is_certification = False
    if not is_certification:
        reasons.append("Tanda tangan bukan tanda tangan sertifikasi dokumen")
    if first.docmdp_level != MDPPerm.NO_CHANGES:
        reasons.append("Tanda tangan tidak mengunci dokumen dari perubahan")

    status = await _validate_certification(first, roots, at)
    details = [_detail(first, status, "signature")]
    if not (status.intact and status.valid):
        reasons.append("Isi dokumen tidak cocok dengan tanda tangan (dokumen telah diubah)")
    elif not status.trusted:
        if status.revoked:
            reasons.append("Sertifikat penandatangan telah dicabut")
        else:
            reasons.append(
                "Sertifikat penandatangan tidak diterbitkan oleh otoritas yang dipercaya"
            )
    ts = status.timestamp_validity
    if ts is None:
        reasons.append("Tanda tangan tidak memiliki stempel waktu")
    elif not (ts.intact and ts.valid and ts.trusted):
        reasons.append("Stempel waktu tanda tangan tidak sah")
    if not _only_lta_after(status.coverage, status.modification_level):
        reasons.append("Dokumen diubah setelah ditandatangani")
    if not status.docmdp_ok:
        reasons.append("Perubahan setelah penandatanganan melanggar kunci dokumen")
    if not status.bottom_line and not reasons:
        reasons.append("Validasi tanda tangan gagal")

    if not _tail_is_revisions(pdf, reader, sigs):
        reasons.append("Ada data tambahan setelah bagian dokumen yang ditandatangani")

    # Everything after the certification signature may only be archival maintenance.
    for later in sigs[1:]:
        if later.sig_object_type != "/DocTimeStamp":
            reasons.append("Ada tanda tangan lain yang ditambahkan setelah surat diterbitkan")
            continue
        ts_status = await async_validate_pdf_timestamp(later, _context(roots, at))
        details.append(_detail(later, ts_status, "document_timestamp"))
        if not (ts_status.intact and ts_status.valid):
            reasons.append("Stempel waktu arsip tidak utuh")
        if not _only_lta_after(ts_status.coverage, ts_status.modification_level):
            reasons.append("Dokumen diubah setelah stempel waktu arsip")

    if reasons:
        return _invalid(reasons, signatures=details, signed_revision_sha256=signed_hash)
    return _CryptoOk(details, signed_hash)


def _tail_is_revisions(pdf: bytes, reader: PdfFileReader, sigs: list[EmbeddedPdfSignature]) -> bool:
    """Bytes after the last signed range must be whole revisions (later checked by diff
    analysis), not loose data: appending junk plus a copy of the old ``startxref`` leaves
    pyHanko's revision list unchanged and would otherwise pass as "no modification"."""
    last = max(sigs, key=lambda e: int(e.byte_range[2]) + int(e.byte_range[3]))
    end = int(last.byte_range[2]) + int(last.byte_range[3])
    later_revisions = reader.xrefs.total_revisions - 1 - last.signed_revision
    return pdf[end:].count(b"startxref") == later_revisions


def _only_lta_after(coverage: SignatureCoverageLevel | None, mod: ModificationLevel | None) -> bool:
    """Untouched since signing, or only DSS / document timestamp revisions were appended."""
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return True
    return coverage == SignatureCoverageLevel.ENTIRE_REVISION and mod in (
        ModificationLevel.NONE,
        ModificationLevel.LTA_UPDATES,
    )


async def averify_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[TrustRoot],
    registry_lookup: Callable[[str], RegistryEntry | None],
    at: datetime | None = None,
) -> Verdict:
    """verify_pdf for callers that already run an event loop (async web handlers)."""
    try:
        roots = [to_asn1_cert(c) for c in trust_roots]
        result = await _verify_crypto(pdf, roots, at)
    except Exception as e:  # noqa: BLE001 - the rule: any exception while reading is INVALID
        return _invalid([f"Berkas tidak dapat diperiksa: {type(e).__name__}: {e}"])
    if isinstance(result, Verdict):
        return result
    # Outside the try on purpose: a registry outage must surface as an error, not as a
    # verdict that calls a genuine letter invalid.
    entry = registry_lookup(result.signed_hash)
    common: dict[str, Any] = {
        "signatures": result.details,
        "signed_revision_sha256": result.signed_hash,
        "registry": entry,
    }
    if entry is None:
        reason = "Tanda tangan sah, tetapi surat ini tidak tercatat di registri"
        return Verdict(False, UNKNOWN, [reason], **common)
    if entry.status == "revoked":
        return Verdict(False, REVOKED, ["Surat ini telah dicabut oleh penerbitnya"], **common)
    if entry.status != "active":
        return Verdict(False, UNKNOWN, [f"Status surat di registri: {entry.status}"], **common)
    return Verdict(True, VALID, [], **common)


def verify_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[TrustRoot],
    registry_lookup: Callable[[str], RegistryEntry | None],
    at: datetime | None = None,
) -> Verdict:
    """Judge an uploaded PDF offline. Any failure to read the file is an INVALID verdict.

    ``registry_lookup`` receives the sha256 (hex) of the signed revision: the bytes up to the
    end of the certification signature's ByteRange, i.e. the file exactly as it was issued,
    so a letter is still found after an archival document timestamp was appended.
    ``at`` judges as of another moment (default: now). Exceptions raised by
    ``registry_lookup`` propagate. In async code use ``averify_pdf``.
    """
    return asyncio.run(
        averify_pdf(pdf, trust_roots=trust_roots, registry_lookup=registry_lookup, at=at)
    )


__all__ = [
    "INVALID",
    "REVOKED",
    "UNKNOWN",
    "VALID",
    "RegistryEntry",
    "averify_pdf",
    "SignatureDetail",
    "Verdict",
    "verify_pdf",
]
