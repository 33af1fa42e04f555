"""Small real PDFs for the signing and verification tests (fpdf2, no engine.render)."""

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
    from engine.pki import issue_signer

    return issue_signer(
        keys_dir,
        username="kades.grogol",
        full_name="Budi Santoso",
        title="Kepala Desa",
        village="Desa Grogol",
        passphrase=PASSPHRASE,
        valid_days=valid_days,
    )
