"""PAdES B-LT and B-LTA for letters: validation data (a DSS) and document timestamps.

At issue (``extend_letter``), right after the certification signature (PAdES B-T, made by
engine.trust.signing), one incremental update adds:
- a Document Security Store with the certificates (signer, issuing CA, root, TSA) and the
  revocation data a verifier needs without any network: an OCSP response for the signer's
  certificate and one for the TSA's (made in-process by our own responder logic,
  engine.trust.pki.ocsp, from the registry's view of the serial), and the root's CRL over the
  issuing CA when the server folder holds one;
- a document timestamp (``/DocTimeStamp``, RFC 3161) from our TSA over the whole file.

That is PAdES B-LTA. The letter "as issued" for the registry remains the certified revision
(the bytes the certification signature covers): its SHA-256 is ``letters.pdf_sha256``, the key
the verdict looks up (engine.trust.verification), and everything after it is exactly what
engine.trust.pdf_updates allows (a DSS and document timestamps).

Speed: the validation data is the same for every letter a signer signs in a batch, so it is
made once per signer and reused for REVINFO_REUSE (the OCSP responses are valid for
``ocsp.OCSP_VALID``, well beyond that, so a letter's signing time always falls inside its
embedded response's validity). Revocation between two letters of a batch is still caught:
the issuance re-checks the signer's certificate against the registry in the short write.

Later, ``refresh_pdf`` appends another DSS + document timestamp (engine.trust.lta_refresh
decides which letters need it), so the archive stays verifiable after the TSA certificate of
the last timestamp expires.

pyHanko rewrites the document information dictionary (and the XMP metadata, when the file has
one) on every incremental update. Our updates keep both untouched (``_KeepMetaWriter``): a
PDF/A letter's XMP and /Info stay as issued and consistent with each other, and the archival
updates hold nothing but what pdf_updates allows.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import DocumentSecurityStore

from engine.trust import pki
from engine.trust.pki.ocsp import CertStatus
from engine.trust.signing import (
    MD_ALGORITHM,
    DevTimeStamper,
    LoadedSigner,
    SigningError,
    _KeepMetaWriter,
    run_with_tsa,
)

# Reuse one signer's validation data for this long (OCSP responses are valid for an hour).
REVINFO_REUSE = timedelta(minutes=10)
TOKEN_SLACK = 512  # DER bytes over the measured token size
FIELD_PREFIX = "ArsipStempelWaktu"

StatusOf = Callable[[int], CertStatus]


@dataclass(frozen=True)
class ArchiveData:
    """What a verifier needs beside the letter and the root, as DER objects for the DSS."""

    certs: tuple[asn1_x509.Certificate, ...]
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    made_at: datetime

    def fresh(self, now: datetime) -> bool:
        return now - self.made_at < REVINFO_REUSE


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def ocsp_response(
    keys_dir: Path,
    cert: x509.Certificate,
    status_of: StatusOf,
    *,
    now: datetime | None = None,
) -> tuple[bytes, str]:
    """Our responder's DER answer about ``cert`` (issued by the issuing CA), made in-process
    exactly as the portal's /pki/ocsp would (no nonce: the shared, cached answer)."""
    issuing = pki.load_issuing_ca(keys_dir)
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuing, hashes.SHA1())  # RFC 5019: what clients send
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    from engine.trust.pki.ocsp import answer

    got = answer(keys_dir, request, status_of, now=now)
    return got.der, got.status


def archive_data(
    keys_dir: Path,
    signer_certs: Iterable[x509.Certificate],
    status_of: StatusOf,
    *,
    tsa_cert: x509.Certificate | None = None,
    require_good: bool = True,
    issuing_crl: bytes | None = None,
    now: datetime | None = None,
) -> ArchiveData:
    """The DSS content for letters signed by ``signer_certs`` and timestamped under
    ``tsa_cert`` (default: the TSA certificate in keys_dir): their chains, an OCSP response
    for each certificate the issuing CA made (the signers, our TSA), and the root's CRL
    over the issuing CA when the server folder has one; ``issuing_crl`` (DER), the issuing
    CA's current CRL, too when given (validators such as pyHanko consult an OCSP response only
    for a certificate that names a responder, which ours do only once the deployment has a
    publication URL; a CRL they check either way). With ``require_good`` a certificate our
    responder does not call good is refused (SigningError) rather than archived."""
    now = now or datetime.now(UTC)
    issuing, root = pki.load_issuing_ca(keys_dir), pki.load_root_ca(keys_dir)
    leaves = [*signer_certs, tsa_cert or pki.load_tsa_cert(keys_dir)]
    certs: dict[bytes, x509.Certificate] = {}
    ocsps: list[asn1_ocsp.OCSPResponse] = []
    for cert in [*leaves, issuing, root]:
        certs.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    for cert in leaves:
        if cert.issuer != issuing.subject:
            continue  # not ours to answer for (an older issuing CA): its chain only
        der, status = ocsp_response(keys_dir, cert, status_of, now=now)
        if status != "good" and require_good:
            raise SigningError(
                "Status sertifikat menurut OCSP kabupaten bukan 'baik' "
                f"({status}); surat tidak diterbitkan"
            )
        ocsps.append(asn1_ocsp.OCSPResponse.load(der))
    crls = []
    if issuing_crl is not None:
        crls.append(asn1_crl.CertificateList.load(issuing_crl))
    root_crl = pki.root_crl(keys_dir)
    if root_crl is not None:
        crls.append(
            asn1_crl.CertificateList.load(root_crl.public_bytes(serialization.Encoding.DER))
        )
    return ArchiveData(
        certs=tuple(_asn1(c) for c in certs.values()),
        ocsps=tuple(ocsps),
        crls=tuple(crls),
        made_at=now,
    )


def tsa_certificate(timestamper: TimeStamper, keys_dir: Path) -> x509.Certificate:
    """The certificate the TSA signs its tokens with: our development TSA's own, or, for a TSA
    elsewhere (SURATDESA_TSA_URL), the signer of a token it gives us now."""
    if isinstance(timestamper, DevTimeStamper):
        return x509.load_der_x509_certificate(timestamper.tsa_cert.dump())
    token = run_with_tsa(timestamper.async_dummy_response(MD_ALGORITHM))
    signed = token["content"]
    sid = signed["signer_infos"][0]["sid"]
    for choice in signed["certificates"]:
        cert = choice.chosen
        if (
            sid.name == "issuer_and_serial_number"
            and cert.issuer == sid.chosen["issuer"]
            and cert.serial_number == sid.chosen["serial_number"].native
        ):
            return x509.load_der_x509_certificate(cert.dump())
    raise SigningError("Token TSA tidak memuat sertifikat penandatangannya")


def archive_for_signer(
    signer: LoadedSigner,
    keys_dir: Path,
    status_of: StatusOf,
    timestamper: TimeStamper,
    *,
    issuing_crl: Callable[[], bytes] | None = None,
    now: datetime | None = None,
) -> ArchiveData:
    """``archive_data`` for one opened signer, made once per REVINFO_REUSE (per batch);
    ``issuing_crl`` gives the issuing CA's current CRL (DER)."""
    now = now or datetime.now(UTC)
    hit = signer.archive
    if isinstance(hit, ArchiveData) and hit.fresh(now):
        return hit
    made = archive_data(
        keys_dir,
        [signer.cert],
        status_of,
        tsa_cert=tsa_certificate(timestamper, keys_dir),
        issuing_crl=issuing_crl() if issuing_crl is not None else None,
        now=now,
    )
    signer.archive = made
    return made


# Token size per timestamper, measured once (DER); the field reserves twice that, hex.
_token_size: weakref.WeakKeyDictionary[TimeStamper, int] = weakref.WeakKeyDictionary()


async def _reserve(timestamper: TimeStamper) -> int:
    size = _token_size.get(timestamper)
    if size is None:
        size = len((await timestamper.async_dummy_response(MD_ALGORITHM)).dump())
        _token_size[timestamper] = size
    return 2 * (size + TOKEN_SLACK)


async def _archive_revision(
    pdf: bytes, data: ArchiveData, timestamper: TimeStamper, field_name: str
) -> bytes:
    writer = _KeepMetaWriter(BytesIO(pdf))
    DocumentSecurityStore.supply_dss_in_writer(
        writer, None, certs=list(data.certs), ocsps=list(data.ocsps), crls=list(data.crls)
    )
    stamper = signers.PdfTimeStamper(timestamper, field_name=field_name)
    try:
        out = await stamper.async_timestamp_pdf(
            writer, MD_ALGORITHM, bytes_reserved=await _reserve(timestamper)
        )
    except PyHankoSigningError as e:
        if "larger than expected" not in str(e):
            raise
        _token_size.pop(timestamper, None)  # a bigger token than before: let pyHanko size it
        writer = _KeepMetaWriter(BytesIO(pdf))
        DocumentSecurityStore.supply_dss_in_writer(
            writer, None, certs=list(data.certs), ocsps=list(data.ocsps), crls=list(data.crls)
        )
        out = await stamper.async_timestamp_pdf(writer, MD_ALGORITHM)
    return out.getvalue()


def extend_letter(
    certified: bytes, data: ArchiveData, timestamper: TimeStamper, *, number: int = 1
) -> bytes:
    """``certified`` (a freshly certified letter, B-T) plus one update with the DSS and a
    document timestamp: B-LTA. ``number`` names the timestamp field."""
    return run_with_tsa(_archive_revision(certified, data, timestamper, f"{FIELD_PREFIX}{number}"))


def document_timestamp_count(pdf: bytes) -> int:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    return sum(1 for e in reader.embedded_signatures if e.sig_object_type == "/DocTimeStamp")


def refresh_pdf(pdf: bytes, data: ArchiveData, timestamper: TimeStamper) -> bytes:
    """A stored letter plus a new DSS update and a fresh document timestamp (B-LTA renewal)."""
    number = document_timestamp_count(pdf) + 1
    return run_with_tsa(_archive_revision(pdf, data, timestamper, f"{FIELD_PREFIX}{number}"))


__all__ = [
    "REVINFO_REUSE",
    "ArchiveData",
    "archive_data",
    "archive_for_signer",
    "document_timestamp_count",
    "extend_letter",
    "ocsp_response",
    "refresh_pdf",
    "tsa_certificate",
]
