"""Small real PDFs for the signing and verification tests (fpdf2, no engine.letters.render)."""

from __future__ import annotations

from fpdf import FPDF


def one_page_pdf(text: str = "SURAT KETERANGAN UMUM TERPADU") -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creator("Surat Desa tests")
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 10, "PEMERINTAH KABUPATEN SUKOHARJO", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, text, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0,
        6,
        "Yang bertanda tangan di bawah ini Kepala Desa Grogol menerangkan bahwa "
        "Nama: Siti Aminah, NIK: 3311xxxxxxxx0001, benar penduduk Desa Grogol.",
    )
    return bytes(pdf.output())


PASSPHRASE = "rahasia-desa-123"


def issue_test_signer(keys_dir, *, valid_days: int = 730):
    """A Kepala Desa certificate from the PKI in keys_dir (init_pki must have run)."""
    from engine.trust.pki import issue_signer

    return issue_signer(
        keys_dir,
        username="kades.grogol",
        full_name="Budi Santoso",
        title="Kepala Desa",
        village="Desa Grogol",
        passphrase=PASSPHRASE,
        valid_days=valid_days,
    )


def validate_letter(pdf: bytes, keys_dir):
    """pyHanko's validation of the one signature in ``pdf`` against the dev trust roots."""
    from io import BytesIO

    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from engine.trust import pki

    roots = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
        for c in pki.load_trust_roots(keys_dir)
    ]
    reader = PdfFileReader(BytesIO(pdf))
    (emb,) = reader.embedded_signatures
    vc = ValidationContext(trust_roots=roots, allow_fetching=False)
    return reader, emb, validate_pdf_signature(emb, vc)


def assert_certified_by(pdf: bytes, keys_dir, signer_cn: str):
    """The letter profile: PAdES certification, no changes allowed, trusted timestamp, whole
    file covered, and the chain up to the dev root embedded. Returns the validation parts."""
    from datetime import UTC, datetime, timedelta

    from pyhanko.sign.fields import MDPPerm
    from pyhanko.sign.validation import read_certification_data
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    reader, emb, status = validate_letter(pdf, keys_dir)
    assert status.bottom_line, status.pretty_print_details()
    assert status.trusted and status.intact and status.valid
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert emb.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert emb.docmdp_level == MDPPerm.NO_CHANGES
    certification = read_certification_data(reader)
    assert certification is not None and certification.permission == MDPPerm.NO_CHANGES
    ts = status.timestamp_validity
    assert ts is not None and ts.trusted and ts.intact and ts.valid
    assert abs(ts.timestamp - datetime.now(UTC)) < timedelta(minutes=5)
    assert status.signing_cert.subject.native["common_name"] == signer_cn
    # the chain travels with the signature: a verifier only needs the root
    embedded = {c.chosen.subject.native["common_name"] for c in emb.signed_data["certificates"]}
    assert embedded == {
        signer_cn,
        "CA Penerbit Surat Desa Kabupaten Sukoharjo",
        "Root CA Pemerintah Kabupaten Sukoharjo",
    }
    return reader, emb, status
