"""The offline verdict: genuine, revoked, unknown, and the ways a letter can be forged."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko_certvalidator import ValidationContext

from engine.trust import pki, signing
from engine.trust.verification import (
    INVALID,
    REVOKED,
    UNKNOWN,
    VALID,
    RegistryEntry,
    Verdict,
    to_asn1_cert,
    verify_pdf,
)
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer, one_page_pdf


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    pki.init_pki(d)
    return d


@pytest.fixture(scope="module")
def timestamper(keys):
    return signing.make_timestamper(None, keys)


@pytest.fixture(scope="module")
def signed(keys, timestamper) -> bytes:
    signer = signing.load_signer(issue_test_signer(keys).p12, PASSPHRASE, keys_dir=keys)
    return signing.sign_letter(
        one_page_pdf(), signer, timestamper, reason="Surat keterangan", location="Desa Grogol"
    )


def registry(pdf: bytes, status: str = "active"):
    """A registry holding exactly this issued file."""
    digest = hashlib.sha256(pdf).hexdigest()
    entry = RegistryEntry(status=status, number="470/001/33.11.01.2001/XI/2026", verify_code="k")
    return lambda h: entry if h == digest else None


def check(pdf: bytes, keys, lookup) -> Verdict:
    return verify_pdf(
        pdf, trust_roots=pki.load_trust_roots(keys), registry_lookup=lookup, cert_revocation=NONE
    )


def NONE(serial: str) -> None:  # noqa: N802 - a certificate revocation list with nothing on it
    return None


def assert_invalid(verdict: Verdict) -> None:
    assert verdict.status == INVALID, verdict
    assert not verdict.valid
    assert verdict.reasons


def test_genuine_letter_is_valid(signed, keys):
    v = check(signed, keys, registry(signed))
    assert v.status == VALID and v.valid and v.reasons == []
    assert v.signed_revision_sha256 == hashlib.sha256(signed).hexdigest()
    assert v.registry is not None and v.registry.number.startswith("470/")
    (sig,) = v.signatures
    assert sig.signer_cn == "Budi Santoso"
    assert sig.issuer == "CA Penerbit Surat Desa Kabupaten Sukoharjo"
    assert sig.tsa_name == "Layanan Stempel Waktu Surat Desa Kabupaten Sukoharjo"
    assert sig.timestamp_trusted
    assert sig.coverage == "ENTIRE_FILE"
    assert sig.modification_level == "NONE"
    assert sig.docmdp_level == "NO_CHANGES"
    assert v.revocation_checked and "tidak dicabut" in sig.revocation


def test_revoked_in_registry(signed, keys):
    v = check(signed, keys, registry(signed, "revoked"))
    assert v.status == REVOKED and not v.valid
    assert "dicabut" in v.reasons[0]


def test_not_in_registry(signed, keys):
    v = check(signed, keys, lambda h: None)
    assert v.status == UNKNOWN and not v.valid


def test_trailing_whitespace_is_tolerated(signed, keys):
    assert check(signed + b"\r\n \n", keys, registry(signed)).status == VALID


def test_bytes_appended_after_eof(signed, keys):
    v = check(signed + b"\n% sisipan\n", keys, registry(signed))
    assert_invalid(v)
    assert any("setelah akhir berkas" in r for r in v.reasons)


def test_loose_data_disguised_as_a_revision(signed, keys):
    # junk plus a copy of the last startxref: no new revision for pyHanko, no junk after %%EOF
    startxref = re.findall(rb"startxref\s+(\d+)", signed)[-1]
    forged = signed + b"\n% LUNAS\nstartxref\n" + startxref + b"\n%%EOF\n"
    v = check(forged, keys, registry(signed))
    assert_invalid(v)
    assert any("komentar" in r for r in v.reasons), v.reasons


def test_one_byte_changed_inside_signed_range(signed, keys):
    pos = signed.index(b"Surat Desa tests")  # the /Creator string, parsed without trouble
    forged = signed[:pos] + b"X" + signed[pos + 1 :]
    v = check(forged, keys, registry(signed))
    assert_invalid(v)
    assert any("tidak cocok" in r for r in v.reasons)


def test_incremental_update_adding_text(signed, keys):
    w = IncrementalPdfFileWriter(BytesIO(signed))
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (LUNAS - PALSU) Tj ET")
    w.add_stream_to_page(0, w.add_object(stream))
    out = BytesIO()
    w.write(out)
    forged = out.getvalue()
    assert forged.startswith(signed)
    v = check(forged, keys, registry(signed))
    assert_invalid(v)
    assert any("diubah setelah ditandatangani" in r for r in v.reasons)
    assert v.signatures[0].modification_level == "OTHER"


def test_signed_by_another_ca(keys, tmp_path):
    pki.init_pki(tmp_path)  # same names, different keys: a look-alike regency PKI
    signer = signing.load_signer(issue_test_signer(tmp_path).p12, PASSPHRASE, keys_dir=tmp_path)
    ts = signing.make_timestamper(None, tmp_path)
    forged = signing.sign_letter(one_page_pdf(), signer, ts, reason="r", location="l")
    v = check(forged, keys, registry(forged))
    assert_invalid(v)
    assert any("otoritas yang dipercaya" in r for r in v.reasons)
    # Not in our registry: another deployment's letter (or a look-alike) is not ours to judge.
    v = check(forged, keys, lambda h: None)
    assert v.status == UNKNOWN and not v.valid, v
    assert v.reasons == [
        "Surat ini tidak diterbitkan oleh layanan ini (penandatangan tidak dikenal)"
    ]


def test_unsigned_pdf(keys):
    v = check(one_page_pdf(), keys, lambda h: None)
    assert_invalid(v)
    assert "tidak memiliki tanda tangan" in v.reasons[0]


@pytest.mark.parametrize(
    "data", [b"", b"bukan pdf sama sekali", b"%PDF-1.7\n\x00\xff garbage\n%%EOF\n"]
)
def test_garbage(data, keys):
    assert_invalid(check(data, keys, lambda h: None))


def test_document_timestamp_keeps_it_valid(signed, keys, timestamper):
    w = IncrementalPdfFileWriter(BytesIO(signed))
    extended = PdfTimeStamper(timestamper).timestamp_pdf(w, "sha256").getvalue()
    assert extended.startswith(signed) and len(extended) > len(signed)
    v = check(extended, keys, registry(signed))  # the registry knows the file as issued
    assert v.status == VALID, v.reasons
    assert v.signed_revision_sha256 == hashlib.sha256(signed).hexdigest()
    assert v.signatures[0].coverage == "ENTIRE_REVISION"
    assert v.signatures[0].modification_level == "LTA_UPDATES"
    assert [s.kind for s in v.signatures] == ["signature", "document_timestamp"]

    # B-LTA as an archive job would do it: document timestamp, then a DSS revision after it
    vc = ValidationContext(trust_roots=[to_asn1_cert(c) for c in pki.load_trust_roots(keys)])
    w = IncrementalPdfFileWriter(BytesIO(signed))
    with_dss = PdfTimeStamper(timestamper).timestamp_pdf(w, "sha256", validation_context=vc)
    assert b"/DSS" in with_dss.getvalue()[len(signed) :]
    assert check(with_dss.getvalue(), keys, registry(signed)).status == VALID

    # ... but a change after the document timestamp is still caught
    w = IncrementalPdfFileWriter(BytesIO(extended))
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (PALSU) Tj ET")
    w.add_stream_to_page(0, w.add_object(stream))
    out = BytesIO()
    w.write(out)
    assert_invalid(check(out.getvalue(), keys, registry(signed)))


def test_still_valid_after_the_signer_certificate_expired(signed, keys):
    later = datetime.now(UTC) + timedelta(days=3 * 365)  # signer cert: 730 days
    v = verify_pdf(
        signed,
        trust_roots=pki.load_trust_roots(keys),
        registry_lookup=registry(signed),
        cert_revocation=NONE,
        at=later,
    )
    assert v.status == VALID, v.reasons


def test_registry_errors_are_not_verdicts(signed, keys):
    def broken(_h):
        raise ConnectionError("database down")

    with pytest.raises(ConnectionError):
        check(signed, keys, broken)
