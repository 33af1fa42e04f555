"""The offline verdict on an uploaded letter (DESIGN.md, "Trust").

VALID only if every check below passes; the failing checks are listed, in Indonesian, in
``Verdict.reasons``. Nothing here touches the network: trust comes from the given roots;
whether a letter was withdrawn, and whether its signer's certificate was revoked, come from the
registry (``with_registry``). What may follow the issued bytes is decided by
engine.trust.pdf_updates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
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

from engine.aio import run_sync
from engine.dates import format_wib
from engine.trust.pdf_updates import UpdateRefused, check_updates

VALID, INVALID, REVOKED, UNKNOWN = "VALID", "INVALID", "REVOKED", "UNKNOWN"
REPLACED = "REPLACED"

# Check revocation data only where a certificate declares a source, never fetch, and do not
# fail for its absence. Our certificates now declare a CRL and an OCSP address (for tools we
# did not write), but the verdict never goes online: our signers' revocation is judged from the
# registry in ``with_registry``, the same rows the portal's CRL and OCSP answers are made from,
# against the letter's trusted timestamp.
_REVINFO_POLICY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
    )
)
# PDF white-space characters except NUL (ISO 32000-1, 7.2.2); NUL padding is not a harmless
# line ending, so it counts as appended data.
_TRAILING_OK = re.compile(rb"[ \t\r\n\f]*\Z")
UNTRUSTED_SIGNER = "Sertifikat penandatangan tidak diterbitkan oleh otoritas yang dipercaya"
UNTRUSTED_SIGNATURE_TSA = "Stempel waktu tanda tangan dibuat oleh TSA yang tidak dipercaya"
UNTRUSTED_ARCHIVE_TSA = "Stempel waktu arsip dibuat oleh TSA yang tidak dipercaya"
REVOCATION_NOT_CHECKED = "tidak diperiksa (tidak ada data pencabutan sertifikat)"


@dataclass(frozen=True)
class RegistryEntry:
    status: str  # "active" | "revoked" | "replaced"
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
    chain: tuple[str, ...] = ()  # common names from the signer up to the trust anchor
    serial: str | None = None  # signer certificate serial, hex (looked up in the CRL)
    certification: str | None = None  # DocMDP level of a certification signature, in words
    changes: str = ""  # what changed after this signature, in words


@dataclass
class Verdict:
    valid: bool
    status: str  # VALID | INVALID | REVOKED | REPLACED | UNKNOWN
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
    path = getattr(status, "validation_path", None)
    chain: tuple[str, ...] = ()
    if path is not None:
        chain = tuple(_cn(c.subject) for c in reversed(list(path.iter_certs(include_root=True))))
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
        chain=chain,
        serial=format(cert.serial_number, "x"),
        certification=_CERTIFICATION_WORDS.get(docmdp.name) if docmdp is not None else None,
        changes=_changes_words(status.coverage, mod),
    )


_CERTIFICATION_WORDS = {
    "NO_CHANGES": "sertifikasi: tidak boleh ada perubahan",
    "FILL_FORMS": "sertifikasi: hanya pengisian formulir",
    "ANNOTATE": "sertifikasi: pengisian formulir dan anotasi",
}


def _changes_words(coverage: SignatureCoverageLevel | None, mod: ModificationLevel | None) -> str:
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return "tidak ada perubahan"
    if coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        if mod in (None, ModificationLevel.NONE):
            return "tidak ada perubahan isi"
        if mod == ModificationLevel.LTA_UPDATES:
            return "hanya pembaruan arsip (data validasi / stempel waktu dokumen)"
        if mod == ModificationLevel.FORM_FILLING:
            return "ada perubahan: isian formulir atau tanda tangan baru"
        if mod == ModificationLevel.ANNOTATIONS:
            return "ada perubahan: anotasi ditambahkan"
        return "ada perubahan: isi dokumen diubah"
    return "tanda tangan tidak mencakup seluruh dokumen"


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


def _is_tsa(cert: asn1_x509.Certificate) -> bool:
    """A time-stamping authority's certificate: critical EKU of exactly id-kp-timeStamping
    (RFC 3161, 2.3), so a document or CA key cannot pose as a TSA."""
    eku = cert.extended_key_usage_value
    return eku is not None and eku.native == ["time_stamping"]


def _signed_revision(pdf: bytes, emb: EmbeddedPdfSignature) -> bytes:
    start2, len2 = int(emb.byte_range[2]), int(emb.byte_range[3])
    return pdf[: start2 + len2]


@dataclass(frozen=True)
class CryptoOk:
    details: list[SignatureDetail]
    signed_hash: str


def _certification_problems(status) -> list[str]:
    """What is wrong with the issuer's certification signature as pyHanko validated it: its
    integrity, the signer's trust and revocation, its timestamp, and changes after it."""
    reasons: list[str] = []
    if not (status.intact and status.valid):
        reasons.append("Isi dokumen tidak cocok dengan tanda tangan (dokumen telah diubah)")
    elif not status.trusted:
        if status.revoked:
            reasons.append("Sertifikat penandatangan telah dicabut")
        else:
            reasons.append(UNTRUSTED_SIGNER)
    ts = status.timestamp_validity
    if ts is None:
        reasons.append("Tanda tangan tidak memiliki stempel waktu")
    elif not (ts.intact and ts.valid):
        reasons.append("Stempel waktu tanda tangan tidak utuh")
    elif not (ts.trusted and _is_tsa(ts.signing_cert)):
        reasons.append(UNTRUSTED_SIGNATURE_TSA)
    if not _only_lta_after(status.coverage, status.modification_level):
        reasons.append("Dokumen diubah setelah ditandatangani")
    if not status.docmdp_ok:
        reasons.append("Perubahan setelah penandatanganan melanggar kunci dokumen")
    return reasons


async def _verify_crypto(
    pdf: bytes, roots: list[asn1_x509.Certificate], at: datetime | None
) -> Verdict | CryptoOk:
    reasons: list[str] = []
    eof = pdf.rfind(b"%%EOF")
    if eof < 0:
        return _invalid(["Berkas bukan PDF yang utuh (penanda akhir %%EOF tidak ada)"])
    if not _TRAILING_OK.match(pdf, eof + 5):
        reasons.append("Ada data tambahan setelah akhir berkas PDF")

    reader = PdfFileReader(BytesIO(pdf), strict=True)
    if reader.encrypted:  # a letter is never issued encrypted: this is not the issued file
        return _invalid(["Berkas terenkripsi (dilindungi kata sandi); surat asli tidak pernah"
                         " dienkripsi"])  # fmt: skip
    sigs = sorted(reader.embedded_signatures, key=lambda e: e.signed_revision)
    if not sigs:
        return _invalid(["Berkas tidak memiliki tanda tangan elektronik"])

    for emb in sigs:
        problem = _byte_range_problem(pdf, emb)
        if problem:
            return _invalid([problem])

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
    reasons += _certification_problems(status)
    if not status.bottom_line and not reasons:
        reasons.append("Validasi tanda tangan gagal")

    # Everything after the letter as issued may only be archival maintenance, decided by our
    # own allow-list (engine.trust.pdf_updates); pyHanko's difference analysis above is a second
    # opinion that can only refuse, never accept.
    issued_end = len(_signed_revision(pdf, first))
    try:
        stamps = check_updates(pdf, issued_end)
    except UpdateRefused as e:
        reasons.append(str(e))
        stamps = None
    later_sigs = sigs[1:]
    if stamps is not None and sorted(s.revision_end for s in stamps) != sorted(
        int(e.byte_range[2]) + int(e.byte_range[3]) for e in later_sigs
    ):
        reasons.append("Tanda tangan setelah surat diterbitkan tidak sesuai dengan revisinya")
    for later in later_sigs:
        if later.sig_object_type != "/DocTimeStamp":
            reasons.append("Ada tanda tangan lain yang ditambahkan setelah surat diterbitkan")
            continue
        ts_status = await async_validate_pdf_timestamp(later, _context(roots, at))
        details.append(_detail(later, ts_status, "document_timestamp"))
        if not (ts_status.intact and ts_status.valid):
            reasons.append("Stempel waktu arsip tidak utuh")
        elif not (ts_status.trusted and _is_tsa(ts_status.signing_cert)):
            reasons.append(UNTRUSTED_ARCHIVE_TSA)
        if not _only_lta_after(ts_status.coverage, ts_status.modification_level):
            reasons.append("Dokumen diubah setelah stempel waktu arsip")

    if reasons:
        return _invalid(reasons, signatures=details, signed_revision_sha256=signed_hash)
    return CryptoOk(details, signed_hash)


_HEX_GAP = re.compile(rb"<[0-9A-Fa-f]*>")


def _byte_range_problem(pdf: bytes, emb: EmbeddedPdfSignature) -> str | None:
    """The ByteRange must start at 0, leave exactly one gap, and that gap must hold nothing
    but the /Contents hex string: anything hidden there (signature wrapping) is unsigned."""
    try:
        start1, len1, start2, len2 = (int(x) for x in emb.byte_range)
    except (TypeError, ValueError):
        return "Rentang tanda tangan (/ByteRange) rusak"
    if start1 != 0 or len1 <= 0 or start2 <= len1 or len2 < 0 or start2 + len2 > len(pdf):
        return "Rentang tanda tangan (/ByteRange) tidak sah"
    if not _HEX_GAP.fullmatch(pdf, len1, start2):
        return "Ada data tersembunyi di celah tanda tangan (/Contents)"
    return None


def _only_lta_after(coverage: SignatureCoverageLevel | None, mod: ModificationLevel | None) -> bool:
    """Untouched since signing, or only DSS / document timestamp revisions were appended."""
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return True
    return coverage == SignatureCoverageLevel.ENTIRE_REVISION and mod in (
        ModificationLevel.NONE,
        ModificationLevel.LTA_UPDATES,
    )


CertRevocationLookup = Callable[[str], "CertRevocation | None"]


@dataclass(frozen=True)
class CertRevocation:
    revoked_at: datetime
    reason: str | None


CRL_SOURCE = "CRL Kabupaten (registri sertifikat dicabut)"


def crypto_check(
    pdf: bytes, *, trust_roots: Iterable[TrustRoot], at: datetime | None = None
) -> Verdict | CryptoOk:
    """The part of the verdict that needs only the file and the roots (no database): safe to
    run in a separate, resource-limited worker process. Finish with ``with_registry``."""
    return run_sync(_acrypto_check(pdf, trust_roots, at))


async def _acrypto_check(
    pdf: bytes, trust_roots: Iterable[TrustRoot], at: datetime | None
) -> Verdict | CryptoOk:
    try:
        roots = [to_asn1_cert(c) for c in trust_roots]
        return await _verify_crypto(pdf, roots, at)
    except Exception as e:  # noqa: BLE001 - the rule: any exception while reading is INVALID
        return _invalid([f"Berkas tidak dapat diperiksa: {type(e).__name__}: {e}"])


def with_registry(
    result: Verdict | CryptoOk,
    registry_lookup: Callable[[str], RegistryEntry | None],
    cert_revocation: CertRevocationLookup,
) -> Verdict:
    """Finish a ``crypto_check`` result with what only the registry knows: whether the issued
    bytes are a letter of this deployment, its status, and the signer certificate's
    revocation. Exceptions of the lookups propagate: a registry outage is an error, never a
    verdict that calls a genuine letter invalid."""
    if isinstance(result, Verdict):
        if _foreign(result) and registry_lookup(result.signed_revision_sha256 or "") is None:
            reason = "Surat ini tidak diterbitkan oleh layanan ini (penandatangan tidak dikenal)"
            return replace(result, status=UNKNOWN, reasons=[reason])
        return result
    details = list(result.details)
    reasons: list[str] = []
    for i, d in enumerate(details):
        if d.kind != "signature" or d.serial is None:
            continue
        rev = cert_revocation(d.serial)
        if rev is None:
            details[i] = replace(d, revocation=f"tidak dicabut (sumber: {CRL_SOURCE})")
            continue
        when = format_wib(rev.revoked_at)
        proof = d.timestamp_time
        if proof is not None and proof < rev.revoked_at:
            # Proven by the trusted timestamp: signed while the certificate was good. The
            # letter stays genuine; the note says when the certificate was revoked.
            text = f"ditandatangani sebelum sertifikat dicabut pada {when} (sumber: {CRL_SOURCE})"
        else:
            text = f"DICABUT {when} (sumber: {CRL_SOURCE})"
            reasons.append("Sertifikat penandatangan telah dicabut sebelum surat ditandatangani")
        details[i] = replace(d, revocation=text)
    entry = registry_lookup(result.signed_hash)
    common: dict[str, Any] = {
        "signatures": details,
        "signed_revision_sha256": result.signed_hash,
        "registry": entry,
        "revocation_checked": True,
    }
    if reasons:
        return Verdict(False, INVALID, reasons, **common)
    if entry is None:
        reason = "Tanda tangan sah, tetapi surat ini tidak tercatat di registri layanan ini"
        return Verdict(False, UNKNOWN, [reason], **common)
    if entry.status == "revoked":
        return Verdict(False, REVOKED, ["Surat ini telah dicabut oleh penerbitnya"], **common)
    if entry.status == "replaced":
        reason = "Surat ini telah diganti dengan surat pembetulan"
        return Verdict(False, REPLACED, [reason], **common)
    if entry.status != "active":
        return Verdict(False, UNKNOWN, [f"Status surat di registri: {entry.status}"], **common)
    return Verdict(True, VALID, [], **common)


def _foreign(result: Verdict) -> bool:
    """An intact letter whose only fault is a signer we do not trust: another deployment's
    letter (or a look-alike). Not ours to call forged: TIDAK DIKENAL, unless the registry
    somehow knows its bytes."""
    return (
        UNTRUSTED_SIGNER in result.reasons
        and set(result.reasons) <= {UNTRUSTED_SIGNER, UNTRUSTED_SIGNATURE_TSA}
        and result.signed_revision_sha256 is not None
    )


async def averify_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[TrustRoot],
    registry_lookup: Callable[[str], RegistryEntry | None],
    cert_revocation: CertRevocationLookup,
    at: datetime | None = None,
) -> Verdict:
    """verify_pdf for callers that already run an event loop (async web handlers)."""
    result = await _acrypto_check(pdf, trust_roots, at)
    return with_registry(result, registry_lookup, cert_revocation)


def verify_pdf(
    pdf: bytes,
    *,
    trust_roots: Iterable[TrustRoot],
    registry_lookup: Callable[[str], RegistryEntry | None],
    cert_revocation: CertRevocationLookup,
    at: datetime | None = None,
) -> Verdict:
    """The verdict on a PDF: the one rule every face uses (through engine.trust.registry, which
    supplies the registry and the certificate revocation list). Any failure to read the file
    is an INVALID verdict.

    ``registry_lookup`` receives the sha256 (hex) of the letter as issued: the bytes up to the
    end of the certification signature's ByteRange, so a letter is still found after archival
    updates were appended (which engine.trust.pdf_updates then restricts to DSS data and document
    timestamps). ``cert_revocation`` maps a signer certificate serial (hex) to its revocation.
    ``at`` judges as of another moment (default: now). In async code use ``averify_pdf``.
    """
    return run_sync(
        averify_pdf(
            pdf,
            trust_roots=trust_roots,
            registry_lookup=registry_lookup,
            cert_revocation=cert_revocation,
            at=at,
        )
    )


__all__ = [
    "REPLACED",
    "CertRevocation",
    "CryptoOk",
    "crypto_check",
    "with_registry",
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
